"""msgspec Structs at the edges: requests, responses (and, with the worker, job payloads).

The request types are strict: unknown fields are refused, ids follow the contract's charset,
the amount is finite within the contract and the timestamp must carry its timezone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct

from fraudsvc.contract import EARLIEST, ID_PATTERN, LATEST, MAX_AMOUNT

Id = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=64,
        pattern=ID_PATTERN,
        description="1-64 characters of A-Z a-z 0-9 . _ : -",
        examples=["tx-000123"],
    ),
]
ExplanationStatus = Literal["not_requested", "pending", "running", "done", "failed"]
DecisionName = Literal["allow", "review", "block"]


class TransactionIn(Struct, forbid_unknown_fields=True):
    """A transaction to score (the data contract, without the label)."""

    transaction_id: Id
    timestamp: Annotated[
        datetime,
        Meta(
            tz=True,
            description="ISO 8601 with a timezone offset, e.g. 2026-03-02T12:30:00Z; "
            "from 1970-01-01 to 9999-12-31",
            # JSON Schema has no range for date-times: the year pattern publishes the range
            extra_json_schema={"extra": {"pattern": r"^(19[7-9][0-9]|[2-9][0-9]{3})-"}},
        ),
    ]
    customer_id: Id
    terminal_id: Id
    amount: Annotated[
        float,
        Meta(
            ge=0.0,
            le=MAX_AMOUNT,
            description="finite, 0 to 1,000,000 (a numeric string is accepted)",
        ),
    ]

    def __post_init__(self) -> None:
        # the feature windows look 37 days back: dates near year 1 would overflow
        if not EARLIEST <= self.timestamp <= LATEST:
            raise ValueError("field `timestamp` must be from 1970-01-01 to 9999-12-31")


class ThresholdsOut(Struct):
    review: float
    block: float


class ModelRef(Struct):
    name: str
    version: str


class ReasonOut(Struct):
    feature: str
    value: float
    contribution: float


class ExplanationLink(Struct):
    status: ExplanationStatus
    url: str | None


class PredictionOut(Struct):
    transaction_id: str
    score: float
    decision: DecisionName
    thresholds: ThresholdsOut
    model: ModelRef
    reasons: list[ReasonOut] | None
    explanation: ExplanationLink
    correlation_id: str
    scored_at: datetime


class LabelIn(Struct, forbid_unknown_fields=True):
    """A verdict that came back later: a chargeback, an analyst's decision..."""

    is_fraud: Annotated[bool | Literal[0, 1], Meta(description="true/false (or 1/0)")]
    source: Annotated[
        str,
        Meta(
            pattern=r"^[a-z][a-z0-9_-]{0,31}$",
            description="where the verdict comes from: chargeback, analyst, customer, ...",
            examples=["chargeback"],
        ),
    ]


class LabelOut(Struct):
    transaction_id: str
    is_fraud: bool
    source: str
    status: Literal["created", "updated", "unchanged"]
    labelled_at: datetime
    updated_at: datetime


class TransactionView(Struct):
    transaction_id: str
    timestamp: datetime
    customer_id: str
    terminal_id: str
    amount: float
    received_at: datetime


class LabelView(Struct):
    is_fraud: bool
    source: str
    labelled_at: datetime
    updated_at: datetime


class TransactionDetail(Struct):
    transaction: TransactionView
    prediction: PredictionOut | None
    features: dict[str, float] | None
    label: LabelView | None


class ExplanationWeight(Struct):
    feature: str
    value: float
    condition: str
    """LIME's discretised condition, e.g. `amount_over_customer_mean_30d > 2.10`."""
    weight: float
    """Weight of the condition in LIME's local linear model of the fraud probability."""


class ExplanationParameters(Struct):
    num_samples: int
    num_features: int
    seed: int


class ExplanationOut(Struct):
    transaction_id: str
    status: Literal["pending", "running", "done", "failed"]
    reason: str
    """Why it was computed: flagged, sampled, all, or requested."""
    method: str
    attempts: int
    model: ModelRef | None
    score: float | None
    """The model's score of the stored vector, recomputed by the explanation (equals the
    prediction's score: the explanation is of that exact model)."""
    parameters: ExplanationParameters | None
    weights: list[ExplanationWeight] | None
    local_prediction: float | None
    intercept: float | None
    local_fit_r2: float | None
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: float | None
    predict_ms: float | None
    """Of duration_ms, the time spent in the model's own predictions."""
    error: str | None


class ExplanationRequested(Struct):
    transaction_id: str
    status: Literal["pending", "running", "done", "failed"]
    url: str


class FieldError(Struct):
    field: str | None
    rule: str
    source: str | None = None


class ErrorBody(Struct):
    error: str
    message: str
    field: str | None = None
    errors: list[FieldError] | None = None
    correlation_id: str | None = None


class CheckOut(Struct):
    ok: bool
    detail: str


class ReadyOut(Struct):
    ready: bool
    checks: dict[str, CheckOut]


class LiveOut(Struct):
    status: Literal["ok"]


def encode(value: object) -> bytes:
    return msgspec.json.encode(value)
