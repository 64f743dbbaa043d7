"""What the queries return: plain typed records, so that database rows never leave `fraudsvc.db`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fraudsvc.features import Span, SpanValue
from fraudsvc.transaction import Transaction


@dataclass(frozen=True)
class History:
    """Everything the request path reads before scoring, in one round trip."""

    exists: bool
    """The transaction id is already stored (a repeat, or a concurrent duplicate)."""
    spans: dict[Span, SpanValue | None]
    """Each span's aggregates; None when the entity's key has a missing field."""


@dataclass(frozen=True)
class PredictionFields:
    """What was scored, exactly: the fields a prediction row holds."""

    score: float
    decision: str
    threshold_review: float
    threshold_block: float
    model_name: str
    model_version: str
    feature_hash: str
    features: list[float]
    reasons: list[dict[str, Any]] | None
    correlation_id: str
    model_decision: str
    """The model's own decision (score against thresholds), before the rules."""
    decided_by: str
    """'model', or the id of the live rule that decided."""
    ruleset_version: int | None
    """The live ruleset version evaluated (None: no ruleset was live)."""
    rule_hits: list[dict[str, Any]] | None
    """Every live and shadow rule that fired (or failed), with the values it read."""


@dataclass(frozen=True)
class NewPrediction(PredictionFields):
    body: Transaction
    explain_reason: str | None
    """Why an explanation is due (flagged, sampled, all) or None: no pending row is written."""
    trace_context: str | None = None
    """W3C trace context (JSON) kept with the pending explanation, for jobs the sweep sends."""
    open_case: bool = False
    """Open a review case in the same write (a review decision, or a block one by setting)."""


@dataclass(frozen=True)
class StoredLabel:
    is_fraud: bool
    source: str
    labelled_at: datetime
    updated_at: datetime
    labelled_by: str | None = None
    """The analyst who gave the verdict (analyst labels)."""


@dataclass(frozen=True)
class StoredTransaction:
    """A stored transaction; `prediction` is None for history imported by `fraudsvc backfill`."""

    body: Transaction
    received_at: datetime
    prediction: StoredPrediction | None
    label: StoredLabel | None


@dataclass(frozen=True)
class StoredPrediction(PredictionFields):
    created_at: datetime
    explanation_status: str | None
    feature_names: list[str] | None
    """The names of `features`, from the declaration they were computed with."""
