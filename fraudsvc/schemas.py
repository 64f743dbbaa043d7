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
    """What the weight is for: the value itself (`amount = 57.9`) for a continuous feature
    without a discretizer and for a categorical feature, else LIME's bin of the value
    (`0.00 < terminal_risk_7d <= 0.10`)."""
    weight: float
    """Weight in LIME's local linear model of the target (see ExplanationOut.target): with a
    `step`, the change of the target per `step` of the feature near this transaction; without,
    the effect of the condition holding."""
    step: float | None = None
    """For a continuous feature without a discretizer: one standard deviation of the feature in
    the model's background sample, the unit of its weight. None otherwise."""


class ExplanationParameters(Struct):
    num_samples: int
    num_features: int
    seed: int
    discretizer: Literal["none", "quartile", "decile", "entropy"]
    sample_around_instance: bool
    """Continuous features drawn around the transaction's values (else around the means)."""
    kernel_width_factor: float
    """LIME's kernel width over sqrt(number of features perturbed)."""
    stability_seeds: int
    """Extra seeds whose explanations gave `stability` (0: none)."""


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
    target: Literal["log_odds", "probability"] | None
    """The scale of `weights`, `intercept` and `local_prediction`: the model's log-odds
    (LightGBM's raw score, the scale of the prediction's `reasons`) or the fraud probability."""
    model_output: float | None
    """The model's output for this transaction on the target scale (log-odds: ln(p / (1 - p))
    of the score), to compare with `local_prediction`."""
    parameters: ExplanationParameters | None
    weights: list[ExplanationWeight] | None
    local_prediction: float | None
    """LIME's local linear model at this transaction, on the target scale."""
    local_error: float | None
    """local_prediction - model_output: how far LIME's local model is from the model at this
    transaction. Far from 0 (a log-odds gap of 1 is a factor of e on the odds), the weights
    describe the samples LIME drew around the transaction more than its own score."""
    intercept: float | None
    local_fit_r2: float | None
    """LIME's weighted R² of its local model on its samples: near 1 the weights describe the
    model's behaviour around this transaction well, near 0 they describe little of it."""
    stability: float | None
    """Mean Jaccard index of the top five features against explanations with
    `parameters.stability_seeds` other seeds (1: the same five every time); None when no
    stability seeds ran."""
    held_missing: list[str] | None
    """Features missing (NaN) in the stored vector: held missing in every sample, so not in the
    weights."""
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: float | None
    """LIME's time, stability seeds included."""
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
