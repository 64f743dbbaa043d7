"""Gauges the worker refreshes from Redis and PostgreSQL: at every scrape and every sweep (the
explanation queue and backlog, the analysts' review queue)."""

from __future__ import annotations

from redis.exceptions import RedisError

from fraudsvc.db import cases, explanations
from fraudsvc.db.engine import DatabaseUnavailable
from fraudsvc.jobs.state import WorkerState


async def refresh_queue_depth(state: WorkerState) -> None:
    try:
        state.metrics.queue_depth.set({}, await state.queue.depth())
    except (RedisError, OSError):
        state.metrics.redis_errors.inc({"operation": "queue_depth"})


async def refresh_backlog(state: WorkerState) -> None:
    try:
        backlog = await explanations.backlog()
    except DatabaseUnavailable:
        state.metrics.db_errors.inc({"source": "backlog"})
        return
    for status, count in backlog.counts.items():
        state.metrics.open.set({"status": status}, count)
    state.metrics.oldest_open.set({}, backlog.oldest_seconds)


async def refresh_review(state: WorkerState) -> None:
    try:
        stats = await cases.review_stats()
    except DatabaseUnavailable:
        state.metrics.db_errors.inc({"source": "review"})
        return
    m = state.metrics
    m.review_open.set({}, stats.open_cases)
    m.review_oldest.set({}, stats.oldest_open_seconds)
    for verdict, count in stats.closed_last_hour.items():
        m.review_closed.set({"verdict": verdict}, count)
    m.review_precision.set({}, stats.confirmed_share_7d)


async def refresh_all(state: WorkerState) -> None:
    await refresh_queue_depth(state)
    await refresh_backlog(state)
    await refresh_review(state)
