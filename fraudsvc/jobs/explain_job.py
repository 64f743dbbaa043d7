"""The `explain` job: LIME for one stored prediction, with the model version that scored it.

Idempotent, because arq delivers at least once: a job for an explanation that is done (or gone)
does nothing, and `finish` only ever completes an explanation once. A failure is retried with
exponential backoff until FRAUDSVC_EXPLAIN_MAX_TRIES attempts, then the explanation ends as
failed with the error. A database outage retries later without spending an attempt.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import msgspec
from arq import Retry
from loguru import logger
from opentelemetry.trace import SpanKind

from fraudsvc.context import correlation_id, transaction_id
from fraudsvc.db import explanations
from fraudsvc.db.engine import DatabaseUnavailable
from fraudsvc.explain import explain_vector
from fraudsvc.jobs.payloads import ExplainJob
from fraudsvc.jobs.state import WorkerState
from fraudsvc.telemetry.tracing import context_from, span, tracer

SCORE_TOLERANCE = 1e-9
OUTAGE_RETRY_SECONDS = 5


class UnfaithfulExplanation(RuntimeError):
    """The model at hand does not give the stored score: it is not the model that scored."""


def backoff(attempts: int) -> int:
    return int(min(60, 2**attempts))


async def explain(ctx: dict[str, Any], payload: dict[str, Any]) -> str:
    state: WorkerState = ctx["state"]
    metrics = state.metrics
    job = msgspec.convert(payload, ExplainJob)
    started = time.perf_counter()
    tokens = (correlation_id.set(job.correlation_id), transaction_id.set(job.transaction_id))
    try:
        with tracer().start_as_current_span(
            "explain",
            context=context_from(job.trace_context),  # the trace of the scoring request
            kind=SpanKind.CONSUMER,
            attributes={"fraudsvc.transaction_id": job.transaction_id, "messaging.system": "arq"},
        ) as current:
            outcome = await _explain(state, job)
            current.set_attribute("fraudsvc.outcome", outcome)
            logger.info("explanation {}", outcome)
    except DatabaseUnavailable as exc:
        metrics.db_errors.inc({"source": "job"})
        metrics.jobs.inc({"outcome": "retried"})
        logger.warning("database unavailable, explanation retried later: {}", exc)
        raise Retry(defer=OUTAGE_RETRY_SECONDS) from exc
    except Retry:
        metrics.jobs.inc({"outcome": "retried"})
        raise
    finally:
        metrics.job_seconds.observe({}, time.perf_counter() - started)
        correlation_id.reset(tokens[0])
        transaction_id.reset(tokens[1])
    metrics.jobs.inc({"outcome": outcome.split(":")[0]})
    return outcome


async def _explain(state: WorkerState, job: ExplainJob) -> str:
    settings = state.settings.explain
    task = await explanations.load_task(job.transaction_id)
    if task is None:
        return "skipped: no such explanation"
    if task.status not in explanations.OPEN:
        return f"skipped: already {task.status}"
    attempts = await explanations.claim(job.transaction_id)
    if attempts is None:
        return "skipped: finished meanwhile"
    try:
        with span("load model", model_version=task.model_version):
            bundle = await asyncio.to_thread(
                state.models.version, task.model_version, task.model_name
            )
        assert bundle.path is not None
        with span(
            "lime",
            num_samples=settings.lime.num_samples,
            stability_seeds=settings.lime.stability_seeds,
        ):
            result = await asyncio.get_running_loop().run_in_executor(
                state.pool,
                explain_vector,
                str(bundle.path),
                task.features,
                settings.lime,
                settings.seed,
            )
        if abs(result["score"] - task.score) > SCORE_TOLERANCE:
            raise UnfaithfulExplanation(
                f"model {task.model_name} v{task.model_version} scores the stored vector "
                f"{result['score']:.9f}, but the stored prediction says {task.score:.9f}"
            )
    except (asyncio.CancelledError, Retry):
        raise
    except DatabaseUnavailable:
        raise
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        if attempts >= settings.max_tries:
            await explanations.fail(job.transaction_id, error)
            logger.error("explanation failed after {} attempts: {}", attempts, error)
            return "failed"
        await explanations.retry_later(job.transaction_id, error)
        logger.warning("explanation attempt {} failed, retrying: {}", attempts, error)
        raise Retry(defer=backoff(attempts)) from exc
    result |= {"model_name": task.model_name, "model_version": task.model_version}
    stored = await explanations.finish(job.transaction_id, result, settings.lime, settings.seed)
    if not stored:
        return "skipped: another run finished first"
    metrics = state.metrics
    metrics.lime_seconds.observe({}, result["seconds"])
    metrics.model_seconds.observe({}, result["predict_seconds"])
    metrics.lag.observe({}, (datetime.now(UTC) - task.requested_at).total_seconds())
    return "done"
