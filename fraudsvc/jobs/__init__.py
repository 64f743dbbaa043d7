"""Background jobs on arq: the explanation job, the sweep, the queue and the worker around them.

arq is kept behind these modules (it is in maintenance mode upstream and pins redis-py < 6).
"""
