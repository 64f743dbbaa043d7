"""The explanation rows: request, claim, finish, retry, fail, read, and what the sweep needs.

States: pending -> running -> done | failed, with `pending` again between retries. Every change
is a conditional update, so a job that arq runs twice (delivery is at least once) can finish an
explanation only once: the second `finish` finds it done and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from fraudsvc.db.queries import outage_guard
from fraudsvc.db.tables import Explanation, Prediction, Transaction
from fraudsvc.explain_options import LimeOptions

OPEN = ("pending", "running")
RequestOutcome = Literal["created", "exists", "retrying", "unknown", "not_scored"]


@dataclass(frozen=True)
class ExplanationTask:
    """What a job needs: the stored vector and the model version that scored it."""

    transaction_id: str
    status: str
    attempts: int
    features: list[float]
    score: float
    model_name: str
    model_version: str
    correlation_id: str | None
    trace_context: str | None
    requested_at: datetime


@dataclass(frozen=True)
class ExplanationRecord:
    transaction_id: str
    status: str
    reason: str
    attempts: int
    method: str
    num_samples: int | None
    num_features: int | None
    seed: int | None
    model_name: str | None
    model_version: str | None
    weights: list[dict[str, Any]] | None
    local_prediction: float | None
    intercept: float | None
    local_fit_r2: float | None
    score: float | None
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: float | None
    predict_ms: float | None
    error: str | None
    target: str | None
    model_output: float | None
    discretizer: str | None
    sample_around_instance: bool | None
    kernel_width_factor: float | None
    stability: float | None
    stability_seeds: int | None
    held_missing: list[str] | None


async def request(
    transaction_id: str, correlation_id: str, trace_context: str | None = None
) -> RequestOutcome:
    """Ask for an explanation of a stored prediction (POST .../explanation). Idempotent; a
    failed explanation is tried again from scratch."""
    async with outage_guard():
        scored = await Prediction.exists().where(Prediction.transaction_id == transaction_id)
        if not scored:
            known = await Transaction.exists().where(Transaction.transaction_id == transaction_id)
            return "not_scored" if known else "unknown"
        inserted = await Explanation.raw(
            "INSERT INTO explanations (transaction_id, status, reason, attempts, method, "
            "requested_at, correlation_id, trace_context) VALUES ({}, 'pending', 'requested', "
            "0, 'lime', now(), {}, {}) ON CONFLICT (transaction_id) DO NOTHING "
            "RETURNING transaction_id",
            transaction_id,
            correlation_id,
            trace_context,
        )
        if inserted:
            return "created"
        retried = await (
            Explanation.update(
                {
                    Explanation.status: "pending",
                    Explanation.attempts: 0,
                    Explanation.error: None,
                    Explanation.requested_at: datetime.now(UTC),
                    Explanation.correlation_id: correlation_id,
                    Explanation.trace_context: trace_context,
                }
            )
            .where(
                (Explanation.transaction_id == transaction_id) & (Explanation.status == "failed")
            )
            .returning(Explanation.transaction_id)
        )
        return "retrying" if retried else "exists"


async def load_task(transaction_id: str) -> ExplanationTask | None:
    async with outage_guard():
        rows = await Explanation.raw(
            "SELECT e.transaction_id, e.status, e.attempts, e.correlation_id, e.trace_context, "
            "e.requested_at, "
            "p.features, p.score, p.model_name, p.model_version "
            "FROM explanations AS e JOIN predictions AS p USING (transaction_id) "
            "WHERE e.transaction_id = {}",
            transaction_id,
        )
    if not rows:
        return None
    r = rows[0]
    return ExplanationTask(
        transaction_id=r["transaction_id"],
        status=r["status"],
        attempts=r["attempts"],
        features=list(r["features"]),
        score=r["score"],
        model_name=r["model_name"],
        model_version=r["model_version"],
        correlation_id=r["correlation_id"],
        trace_context=r["trace_context"],
        requested_at=r["requested_at"],
    )


async def claim(transaction_id: str) -> int | None:
    """pending/running -> running, counting the attempt; None when done or failed already."""
    async with outage_guard():
        rows = await (
            Explanation.update(
                {
                    Explanation.status: "running",
                    Explanation.attempts: Explanation.attempts + 1,
                    Explanation.started_at: datetime.now(UTC),
                }
            )
            .where(
                (Explanation.transaction_id == transaction_id)
                & Explanation.status.is_in(list(OPEN))
            )
            .returning(Explanation.attempts)
        )
    return int(rows[0]["attempts"]) if rows else None


async def finish(
    transaction_id: str, result: dict[str, Any], options: LimeOptions, seed: int
) -> bool:
    """Store the explanation with the options and seed it ran with; False if another run
    already finished it (nothing changes)."""
    now = datetime.now(UTC)
    async with outage_guard():
        rows = await (
            Explanation.update(
                {
                    Explanation.status: "done",
                    Explanation.num_samples: options.num_samples,
                    Explanation.num_features: options.num_features,
                    Explanation.discretizer: options.discretizer,
                    Explanation.sample_around_instance: options.sample_around_instance,
                    Explanation.kernel_width_factor: options.kernel_width_factor,
                    Explanation.stability_seeds: options.stability_seeds,
                    Explanation.seed: seed,
                    Explanation.target: result["target"],
                    Explanation.model_output: result["model_output"],
                    Explanation.stability: result["stability"],
                    Explanation.held_missing: result["held_missing"],
                    Explanation.model_name: result["model_name"],
                    Explanation.model_version: result["model_version"],
                    Explanation.weights: result["weights"],
                    Explanation.local_prediction: result["local_prediction"],
                    Explanation.intercept: result["intercept"],
                    Explanation.local_fit_r2: result["local_fit_r2"],
                    Explanation.score: result["score"],
                    Explanation.duration_ms: result["seconds"] * 1000.0,
                    Explanation.predict_ms: result["predict_seconds"] * 1000.0,
                    Explanation.finished_at: now,
                    Explanation.error: None,
                }
            )
            .where((Explanation.transaction_id == transaction_id) & (Explanation.status != "done"))
            .returning(Explanation.transaction_id)
        )
    return bool(rows)


async def retry_later(transaction_id: str, error: str) -> None:
    async with outage_guard():
        await Explanation.update({Explanation.status: "pending", Explanation.error: error}).where(
            (Explanation.transaction_id == transaction_id) & (Explanation.status == "running")
        )


async def fail(transaction_id: str, error: str) -> None:
    async with outage_guard():
        await Explanation.update(
            {
                Explanation.status: "failed",
                Explanation.error: error,
                Explanation.finished_at: datetime.now(UTC),
            }
        ).where(
            (Explanation.transaction_id == transaction_id) & Explanation.status.is_in(list(OPEN))
        )


async def read(transaction_id: str) -> ExplanationRecord | None:
    async with outage_guard():
        row = (
            await Explanation.select()
            .where(Explanation.transaction_id == transaction_id)
            .output(load_json=True)
            .first()
        )
    if row is None:
        return None
    fields = ExplanationRecord.__dataclass_fields__
    return ExplanationRecord(**{k: v for k, v in row.items() if k in fields})


@dataclass(frozen=True)
class Stale:
    transaction_id: str
    correlation_id: str | None
    trace_context: str | None


async def stale(pending_after: float, running_after: float, limit: int = 1000) -> list[Stale]:
    """Open explanations nobody is working on: pending past `pending_after` seconds since their
    request (the enqueue failed, or Redis lost the job), running past `running_after` since
    their start (the worker died and Redis lost the job too)."""
    now = datetime.now(UTC)
    async with outage_guard():
        rows = await (
            Explanation.select(
                Explanation.transaction_id, Explanation.correlation_id, Explanation.trace_context
            )
            .where(
                (
                    (Explanation.status == "pending")
                    & (Explanation.requested_at < now - timedelta(seconds=pending_after))
                )
                | (
                    (Explanation.status == "running")
                    & (Explanation.started_at < now - timedelta(seconds=running_after))
                )
            )
            .order_by(Explanation.requested_at)
            .limit(limit)
        )
    return [Stale(r["transaction_id"], r["correlation_id"], r["trace_context"]) for r in rows]


async def mark_enqueued(transaction_ids: list[str]) -> None:
    if not transaction_ids:
        return
    async with outage_guard():
        await Explanation.update({Explanation.enqueued_at: datetime.now(UTC)}).where(
            Explanation.transaction_id.is_in(transaction_ids)
        )


@dataclass(frozen=True)
class Backlog:
    counts: dict[str, int]
    """Explanations not finished, by status (pending, running)."""
    oldest_seconds: float
    """Age of the oldest of them (0 when there is none)."""


async def backlog() -> Backlog:
    async with outage_guard():
        rows = await Explanation.raw(
            "SELECT status, count(*) AS n, "
            "extract(epoch FROM now() - min(requested_at)) AS oldest "
            "FROM explanations WHERE status IN ('pending', 'running') GROUP BY status"
        )
    counts = dict.fromkeys(OPEN, 0)
    counts.update({r["status"]: int(r["n"]) for r in rows})
    oldest = max((float(r["oldest"]) for r in rows), default=0.0)
    return Backlog(counts=counts, oldest_seconds=oldest)
