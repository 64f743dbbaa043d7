"""`python -m tests.bench.variant [--no-pool-reset] [--no-trace-logging] ROLE [ARGS...]`:
a fraudsvc role with one of the changes the benchmark suggests applied from outside, to measure
what each would buy before anyone edits the service. Nothing here is used in production.

- `--no-pool-reset`: the asyncpg pool is created with a no-op `reset`. By default asyncpg runs
  `SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL` on every release of a
  connection to the pool: a round trip (and, instrumented, a span) after each statement of the
  request path, which uses no session state.
- `--no-trace-logging`: the `uvicorn.error` logger at INFO. `setup_logging` sets the root
  logger to level 0, which makes uvicorn wrap the app in its MessageLoggerMiddleware (it does so
  when its logger is enabled for TRACE) and build a log record for every ASGI message.

Tracing itself can be switched off without code: OTEL_SDK_DISABLED=true.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any


def _without_pool_reset() -> None:
    import asyncpg

    original = asyncpg.create_pool

    async def no_reset(connection: Any) -> None:
        return None

    def create_pool(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("reset", no_reset)
        return original(*args, **kwargs)

    asyncpg.create_pool = create_pool


def _without_trace_logging() -> None:
    from fraudsvc.telemetry import logs

    original = logs.setup_logging

    def setup_logging(*args: Any, **kwargs: Any) -> None:
        original(*args, **kwargs)
        logging.getLogger("uvicorn.error").setLevel(logging.INFO)

    logs.setup_logging = setup_logging


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.variant")
    parser.add_argument("--no-pool-reset", action="store_true")
    parser.add_argument("--no-trace-logging", action="store_true")
    parser.add_argument("role", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.no_pool_reset:
        _without_pool_reset()
    if args.no_trace_logging:
        _without_trace_logging()
    from fraudsvc.cli import main as fraudsvc_main

    return fraudsvc_main(args.role)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
