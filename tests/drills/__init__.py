"""`make drills` (`python -m tests.drills`): faults under a steady scoring load, and what they
cost.

Everything runs on 127.0.0.1 against a private PostgreSQL and a private Redis (the machine's
own are never touched), with real `fraudsvc web` and `fraudsvc worker` processes and every
scored transaction explained (FRAUDSVC_EXPLAIN=all, so explanations are in flight when the
fault hits). Each drill replays a fresh slice of transactions at a fixed rate, injects its
fault mid-load, waits (bounded) for the explanations, and counts:

- redis-restart: Redis stopped for a few seconds. No scoring request may fail; every
  explanation completes once Redis is back (the sweep enqueues what could not be).
- worker-kill: the worker's process group SIGKILLed mid-job, a new worker started. Every
  explanation completes exactly once.
- postgres-restart: PostgreSQL stopped for a few seconds. Requests meanwhile get 503 with a
  message; no transaction is stored without its prediction; the service recovers by itself.

The exit status is non-zero when a drill breaks its promise.
"""
