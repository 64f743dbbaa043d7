"""The fold: bring the deferred feature buckets up to a minute ago, every few seconds.

The terminal's windows end a label delay back, so its buckets need not follow every write: the
fold adds the rows between the entity's horizon and now minus a minute and moves the horizon
(see `fraudsvc.db.buckets`). It needs PostgreSQL alone, so it runs as a task of the worker
process beside arq, not as an arq job: it goes on while Redis is down, and stopping the worker
never leaves an arq job half-finished. Several workers may fold at once: the entity's fold lock
makes the later one find the horizon already moved. The lag gauge feeds an alert: reads stay
exact whatever the lag, but the raw rows above the horizon grow with it.
"""

from __future__ import annotations

import asyncio

from loguru import logger

from fraudsvc.db import buckets
from fraudsvc.db.engine import DB, OUTAGE_ERRORS
from fraudsvc.telemetry.metrics import WorkerMetrics


async def fold_once(metrics: WorkerMetrics) -> int:
    """One fold of every deferred entity; returns the buckets written."""
    pool = DB.pool
    if pool is None:
        return 0
    try:
        async with pool.acquire() as connection:
            folded = await buckets.fold(connection)
            lags = await buckets.horizons(connection)
    except OUTAGE_ERRORS as exc:
        metrics.db_errors.inc({"source": "fold"})
        logger.warning("fold skipped, PostgreSQL unavailable: {}", exc)
        return 0
    for step in folded:
        metrics.bucket_folded.add({"entity": step.entity}, step.buckets)
        metrics.fold_seconds.observe({}, step.seconds)
    for entity, (_, lag) in lags.items():
        metrics.bucket_lag.set({"entity": entity}, lag)
    return sum(step.buckets for step in folded)


async def fold_forever(metrics: WorkerMetrics, every_seconds: float) -> None:
    """Fold, then wait, until cancelled; an unexpected failure is logged and retried."""
    while True:
        try:
            await fold_once(metrics)
        except Exception:
            logger.exception("fold failed; retrying in {} s", every_seconds)
        await asyncio.sleep(every_seconds)
