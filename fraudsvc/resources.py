"""The resources web and worker share, built in one place so the roles cannot drift apart.

Opened in order, closed in reverse: the database pool, the model (and its follower task), the
explanation queue, and the scorer over them. A database or Redis that is down at startup does
not stop the process: the pool and the queue connect lazily and /readyz says what is missing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass

from loguru import logger

from fraudsvc.db import engine
from fraudsvc.jobs.payloads import ExplainJob
from fraudsvc.jobs.queue import ExplainQueue
from fraudsvc.model.loader import ModelHolder
from fraudsvc.pipeline import Scorer
from fraudsvc.rulebook import Rulebook
from fraudsvc.settings import Settings
from fraudsvc.telemetry.drift import DriftMonitor
from fraudsvc.telemetry.metrics import WebMetrics
from fraudsvc.telemetry.runtime import GcPauses, freeze_startup_heap, thaw, watch_loop
from fraudsvc.telemetry.tracing import current_context_carrier
from fraudsvc.telemetry.web import follow_model, zero


@dataclass
class Resources:
    settings: Settings
    models: ModelHolder
    queue: ExplainQueue | None
    scorer: Scorer
    metrics: WebMetrics
    drift: DriftMonitor
    rulebook: Rulebook


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@asynccontextmanager
async def open_database(settings: Settings, scoring: bool = False) -> AsyncIterator[None]:
    if not await engine.start_pool(settings.database, scoring):
        logger.warning("PostgreSQL is unreachable at startup; requests get 503 until it answers")
    interval = settings.database.replan_seconds
    task = (
        asyncio.create_task(engine.replan(interval), name="replan")
        if scoring and interval > 0
        else None
    )
    try:
        yield
    finally:
        if task is not None:
            await _cancel(task)
        await engine.close_pool()


@asynccontextmanager
async def open_models(
    settings: Settings, metrics: WebMetrics | None = None, follow: bool = True
) -> AsyncIterator[ModelHolder]:
    models = ModelHolder(settings)
    if metrics is not None:
        follow_model(metrics, models)
    await models.load()
    task = asyncio.create_task(models.follow(), name="model-follower") if follow else None
    try:
        yield models
    finally:
        if task is not None:
            await _cancel(task)


@asynccontextmanager
async def open_queue(settings: Settings) -> AsyncIterator[ExplainQueue]:
    queue = ExplainQueue(settings.redis)
    try:
        yield queue
    finally:
        await queue.close()


@asynccontextmanager
async def open_rulebook(
    settings: Settings, models: ModelHolder, metrics: WebMetrics
) -> AsyncIterator[Rulebook]:
    """The live rules and lists: loaded before the first request (so a published block rule
    holds from the first transaction), then followed (LISTEN/NOTIFY and a poll)."""
    rulebook = Rulebook(models, metrics, settings.api.rules_poll_seconds)
    try:
        await rulebook.load()
    except Exception as exc:  # PostgreSQL down at startup: the follower retries
        logger.warning("rules not loaded at startup ({}); retrying in the background", exc)
    task = asyncio.create_task(rulebook.run(), name="rulebook")
    try:
        yield rulebook
    finally:
        await _cancel(task)
        await rulebook.close()


@contextmanager
def runtime_watch(metrics: WebMetrics, freeze: bool) -> Iterator[None]:
    """Full collections timed, the event loop watched, and the startup heap frozen out of the
    collector's reach (fraudsvc.telemetry.runtime says why); all undone on the way out."""
    pauses = GcPauses(metrics)
    pauses.install()
    watcher = asyncio.create_task(watch_loop(metrics), name="loop-watch")
    if freeze:
        freeze_startup_heap()
    try:
        yield
    finally:
        watcher.cancel()
        pauses.remove()
        if freeze:
            thaw()  # what startup built may be collected again once the resources are gone


@asynccontextmanager
async def open_resources(settings: Settings, metrics: WebMetrics) -> AsyncIterator[Resources]:
    """Everything the web process serves with (the worker builds its own set)."""
    async with AsyncExitStack() as stack:
        zero(metrics)
        await stack.enter_async_context(open_database(settings, scoring=True))
        models = await stack.enter_async_context(open_models(settings, metrics))
        queue = await stack.enter_async_context(open_queue(settings))

        async def enqueue(transaction_id: str, correlation_id: str) -> bool:
            outcome = await queue.enqueue(
                ExplainJob(transaction_id, correlation_id, current_context_carrier())
            )
            if outcome == "unavailable":
                metrics.redis_errors.inc({"operation": "enqueue"})
            return outcome != "unavailable"

        t = settings.telemetry
        drift = DriftMonitor(models, metrics, t.monitor_window, t.monitor_interval_seconds)
        drift_task = asyncio.create_task(drift.run(), name="drift-monitor")
        stack.push_async_callback(_cancel, drift_task)
        rulebook = await stack.enter_async_context(open_rulebook(settings, models, metrics))
        stack.enter_context(runtime_watch(metrics, settings.api.gc_freeze))
        yield Resources(
            settings=settings,
            models=models,
            queue=queue,
            scorer=Scorer(settings, models, enqueue, rulebook),
            metrics=metrics,
            drift=drift,
            rulebook=rulebook,
        )
