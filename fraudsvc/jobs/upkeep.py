"""The daily upkeep of the history, as a task of the worker process beside arq (like the fold:
it needs PostgreSQL alone): partitions of the months ahead, then retention
(`fraudsvc.db.maintenance`). It runs at startup and then every day; several workers may run it
at once, since partition changes take an advisory lock and re-check what exists."""

from __future__ import annotations

import asyncio

from loguru import logger

from fraudsvc.db.engine import DB, OUTAGE_ERRORS
from fraudsvc.db.maintenance import Upkeep, upkeep
from fraudsvc.settings import Settings

EVERY_SECONDS = 86_400.0
RETRY_SECONDS = 600.0
"""After a failure (PostgreSQL down, a lock not granted in time), the next try comes sooner."""


async def upkeep_once(settings: Settings) -> Upkeep | None:
    pool = DB.pool
    if pool is None:
        return None
    async with pool.acquire() as connection:
        return await upkeep(connection, settings)


async def upkeep_forever(settings: Settings, every_seconds: float = EVERY_SECONDS) -> None:
    """Upkeep, then wait a day, until cancelled; a failure is logged and retried sooner."""
    while True:
        wait = every_seconds
        try:
            await upkeep_once(settings)
        except OUTAGE_ERRORS as exc:
            logger.warning("history upkeep skipped, PostgreSQL unavailable: {}", exc)
            wait = min(every_seconds, RETRY_SECONDS)
        except Exception:
            logger.exception("history upkeep failed; retrying in {} s", RETRY_SECONDS)
            wait = min(every_seconds, RETRY_SECONDS)
        await asyncio.sleep(wait)
