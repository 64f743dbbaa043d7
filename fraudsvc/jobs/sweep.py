"""The sweep (an arq cron job): enqueue every explanation that nobody is working on.

That covers a score served while Redis was down (the enqueue failed, the row stayed pending),
a Redis restart that lost the queue, a worker that died when Redis lost its job too, and a job
key left without its queue entry (which arq would refuse for a day). The job id is
deterministic, so an explanation whose job is still queued is not enqueued twice.
"""

from __future__ import annotations

from typing import Any

from loguru import logger

from fraudsvc.db import explanations
from fraudsvc.jobs.payloads import ExplainJob
from fraudsvc.jobs.state import WorkerState
from fraudsvc.jobs.worker_metrics import refresh_backlog
from fraudsvc.telemetry.tracing import carrier_from_text

RUNNING_GRACE_SECONDS = 30


async def sweep(ctx: dict[str, Any]) -> int:
    state: WorkerState = ctx["state"]
    es = state.settings.explain
    rows = await explanations.stale(
        pending_after=es.sweep_after_seconds,
        running_after=es.job_timeout_seconds + RUNNING_GRACE_SECONDS,
    )
    queued: list[str] = []
    for row in rows:
        job = ExplainJob(
            transaction_id=row.transaction_id,
            correlation_id=row.correlation_id or "",
            trace_context=carrier_from_text(row.trace_context),
        )
        outcome = await state.queue.enqueue(job)
        if outcome == "already_queued" and await state.queue.drop_orphan(row.transaction_id):
            outcome = await state.queue.enqueue(job)
        if outcome == "unavailable":
            break
        if outcome == "queued":
            queued.append(row.transaction_id)
    await explanations.mark_enqueued(queued)
    state.metrics.swept.add({}, len(queued))
    await refresh_backlog(state)
    if queued:
        logger.info("sweep enqueued {} explanation(s) left without a job", len(queued))
    return len(queued)
