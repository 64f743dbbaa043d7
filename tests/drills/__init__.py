"""`make drills` (`python -m tests.drills`): faults under a 300 requests/s scoring load, and
what they cost.

Everything runs on 127.0.0.1 against a private PostgreSQL and a private Redis (the machine's
own are never touched), with real `fraudsvc web` and `fraudsvc worker` processes and the
production explanation policy (flagged transactions, about 1.4 %: LIME cannot follow 300/s,
and the flagged ones are still explanations in flight when the fault hits). After a warm-up,
each drill sends a fresh slice of transactions open loop (request i leaves at i / 300 s
whether or not the earlier ones have answered), injects its fault 8 s in, holds every answer
against the database (each 2xx stored exactly once, nothing half-written, every flagged
transaction with its explanation row), waits (bounded) for the explanations, and sends a few
more requests to see the service recover by itself:

- redis-restart: Redis stopped for 4 s. No scoring request may fail; every explanation
  completes once Redis is back (the sweep enqueues what could not be).
- worker-kill: the worker's process group SIGKILLed mid-job, a new worker started. Every
  explanation completes exactly once.
- postgres-restart: PostgreSQL stopped for 3 s. Requests meanwhile get 503 with a message; no
  transaction is stored without its prediction; the service recovers by itself.
- web-kill: the web process SIGKILLed, a new one started (30 s of load: it imports for about
  10 s here). Requests meanwhile get no answer; every 2xx is stored exactly once; what was
  stored but never answered has its explanation completed by the worker's sweep.
- postgres-hang: every process of PostgreSQL paused with SIGSTOP for 4 s, then SIGCONT.
  Requests sent meanwhile end as 503 with a message within FRAUDSVC_DB_TIMEOUT_SECONDS (plus
  1 s for the client), nothing is half-written, the service recovers without a restart.

The exit status is non-zero when a drill breaks its promise.
"""
