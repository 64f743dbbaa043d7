"""The fold (an arq cron job): bring the deferred feature buckets up to a minute ago.

The terminal's windows end a label delay back, so its buckets need not follow every write: the
fold adds the rows between the entity's horizon and now minus a minute, every few seconds, and
moves the horizon (see `fraudsvc.db.buckets`). It also refreshes the lag gauge, which an alert
watches: reads stay exact whatever the lag, but the raw rows above the horizon grow with it.
"""

from __future__ import annotations

from typing import Any

from loguru import logger

from fraudsvc.db import buckets
from fraudsvc.db.engine import DB, OUTAGE_ERRORS
from fraudsvc.jobs.state import WorkerState


async def fold_buckets(ctx: dict[str, Any]) -> int:
    state: WorkerState = ctx["state"]
    m = state.metrics
    pool = DB.pool
    if pool is None:
        return 0
    try:
        async with pool.acquire() as connection:
            folded = await buckets.fold(connection)
            lags = await buckets.horizons(connection)
    except OUTAGE_ERRORS as exc:
        m.db_errors.inc({"source": "fold"})
        logger.warning("fold skipped, PostgreSQL unavailable: {}", exc)
        return 0
    for step in folded:
        m.bucket_folded.add({"entity": step.entity}, step.buckets)
        m.fold_seconds.observe({}, step.seconds)
    for entity, (_, lag) in lags.items():
        m.bucket_lag.set({"entity": entity}, lag)
    return sum(step.buckets for step in folded)
