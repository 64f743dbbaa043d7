"""msgspec Structs at the edges: requests, responses (and, with the worker, job payloads).

The request types are strict: unknown fields are refused, ids follow the contract's charset,
the amount is an exact decimal within the contract (at most two decimals), the timestamp must
carry its timezone, and every optional payment attribute follows its rule
(`fraudsvc.transaction`); a value that breaks one is a 422 naming the field.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

from fraudsvc.contract import EARLIEST, LATEST
from fraudsvc.iso import COUNTRIES, CURRENCIES
from fraudsvc.transaction import (
    AMOUNT_RULE,
    ATTRIBUTE_KEY_PATTERN,
    CHANNELS,
    DEVICE_PATTERN,
    ID_PATTERN,
    ID_RULE,
    MAX_AMOUNT,
    MAX_ATTRIBUTE_TEXT,
    MAX_ATTRIBUTES,
    MCC_PATTERN,
    RULES,
    FieldProblem,
    Transaction,
    amount_to_minor,
    canonical_ip,
    check_optional,
)

Id = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=64,
        pattern=ID_PATTERN,
        description=ID_RULE,
        examples=["tx-000123"],
    ),
]
ExplanationStatus = Literal["not_requested", "pending", "running", "done", "failed"]
DecisionName = Literal["allow", "review", "block"]
# checked in __post_init__, so that the message names the rule; `extra_json_schema` publishes
# the same rule (fraudsvc.api.openapi applies it)
Channel = Annotated[
    str,
    Meta(
        description=RULES["channel"],
        examples=["ecommerce"],
        extra_json_schema={"type": "string", "enum": list(CHANNELS)},
    ),
]
Country = Annotated[
    str,
    Meta(
        description=RULES["card_country"],
        examples=["FR"],
        extra_json_schema={"type": "string", "enum": sorted(COUNTRIES)},
    ),
]
AMOUNT_TEXT_PATTERN = r"^((0|[1-9][0-9]{0,5})(\.[0-9]{1,2})?|1000000(\.0{1,2})?)$"  # 0 .. 1,000,000
# attributes are checked in __post_init__ (fraudsvc.transaction.check_attributes), so that an
# error names the key at fault (`attributes.wallet`); the schema below documents the same rules
ATTRIBUTES_SCHEMA = {
    "type": "object",
    "maxProperties": MAX_ATTRIBUTES,
    "propertyNames": {"pattern": ATTRIBUTE_KEY_PATTERN},
    "additionalProperties": {
        "anyOf": [
            {"type": "string", "maxLength": MAX_ATTRIBUTE_TEXT},
            {"type": "number"},
            {"type": "boolean"},
        ]
    },
}


class TransactionIn(Struct, forbid_unknown_fields=True):
    """A transaction to score (the data contract, without the label). The five first fields are
    required; the payment attributes are optional, and a five-field transaction is always valid."""

    transaction_id: Id
    timestamp: Annotated[
        datetime,
        Meta(
            tz=True,
            description="ISO 8601 with a timezone offset, e.g. 2026-03-02T12:30:00Z; from "
            "1970-01-01, and not later than now plus FRAUDSVC_MAX_CLOCK_SKEW_SECONDS",
            # JSON Schema has no range for date-times: the year pattern publishes the range
            extra_json_schema={"extra": {"pattern": r"^(19[7-9][0-9]|[2-9][0-9]{3})-"}},
        ),
    ]
    customer_id: Id
    terminal_id: Id
    amount: Annotated[
        Decimal,
        Meta(
            description=f"{AMOUNT_RULE}: a JSON number, or a numeric string",
            extra_json_schema={
                "anyOf": [
                    {"type": "number", "minimum": 0, "maximum": MAX_AMOUNT, "multipleOf": 0.01},
                    {"type": "string", "pattern": AMOUNT_TEXT_PATTERN},
                ],
                "examples": [57.9],
            },
        ),
    ]
    currency: (
        Annotated[
            str,
            Meta(
                description=RULES["currency"],
                examples=["EUR"],
                extra_json_schema={"type": "string", "enum": sorted(CURRENCIES)},
            ),
        ]
        | None
    ) = None
    merchant_category: (
        Annotated[
            str,
            Meta(pattern=MCC_PATTERN, description=RULES["merchant_category"], examples=["5411"]),
        ]
        | None
    ) = None
    merchant_country: Country | None = None
    card_country: Country | None = None
    channel: Channel | None = None
    device_id: (
        Annotated[
            str,
            Meta(
                pattern=DEVICE_PATTERN,
                min_length=1,
                max_length=128,
                description=RULES["device_id"],
                examples=["dev-7f3a9c"],
            ),
        ]
        | None
    ) = None
    ip: (
        Annotated[
            str,
            Meta(
                description=RULES["ip"],
                examples=["203.0.113.7"],
                extra_json_schema={
                    "anyOf": [
                        {"type": "string", "format": "ipv4"},
                        {"type": "string", "format": "ipv6"},
                    ]
                },
            ),
        ]
        | None
    ) = None
    attributes: (
        Annotated[
            dict[str, Any],
            Meta(
                max_length=MAX_ATTRIBUTES,
                description=RULES["attributes"],
                examples=[{"three_ds": True, "wallet": "apple_pay"}],
                extra_json_schema=ATTRIBUTES_SCHEMA,
            ),
        ]
        | None
    ) = None

    def __post_init__(self) -> None:
        # the feature windows look 37 days back: dates near year 1 would overflow
        if not EARLIEST <= self.timestamp <= LATEST:
            raise ValueError("field `timestamp` must be from 1970-01-01 to 9999-12-31")
        try:
            amount_to_minor(self.amount)
        except ValueError:
            raise ValueError(f"field `amount` must be {AMOUNT_RULE}") from None
        for name in ("currency", "merchant_country", "card_country", "channel", "ip", "attributes"):
            try:
                check_optional(name, getattr(self, name))
            except FieldProblem as problem:
                raise ValueError(str(problem)) from None

    def to_transaction(self) -> Transaction:
        """The transaction as fraudsvc holds it: UTC time, minor units, canonical IP."""
        return Transaction(
            transaction_id=self.transaction_id,
            timestamp=self.timestamp.astimezone(UTC),
            customer_id=self.customer_id,
            terminal_id=self.terminal_id,
            amount_minor=amount_to_minor(self.amount),
            currency=self.currency,
            merchant_category=self.merchant_category,
            merchant_country=self.merchant_country,
            card_country=self.card_country,
            channel=self.channel,
            device_id=self.device_id,
            ip=None if self.ip is None else canonical_ip(self.ip),
            attributes=self.attributes,
        )


class ThresholdsOut(Struct):
    review: float
    block: float


class ModelRef(Struct):
    name: str
    version: str


class ReasonOut(Struct):
    feature: str
    value: float | None
    """The feature's value; null when it is missing (an absent optional field)."""
    contribution: float


class ExplanationLink(Struct):
    status: ExplanationStatus
    url: str | None


class RuleHitOut(Struct):
    """A rule that fired (or failed) on this transaction, with the values that made it fire."""

    id: str
    action: DecisionName
    mode: Literal["live", "shadow"]
    status: Literal["fired", "error"]
    values: dict[str, Any]
    """Every name and attribute the rule reads, and each list look-up as `@list[value]`."""
    error: str | None = None


class PredictionOut(Struct):
    transaction_id: str
    score: float
    decision: DecisionName
    """The final decision: the model's, unless a live rule decided (see `decided_by`)."""
    model_decision: DecisionName
    """What the model alone decided (score against thresholds)."""
    decided_by: str
    """`model`, or the id of the live rule that decided."""
    thresholds: ThresholdsOut
    model: ModelRef
    reasons: list[ReasonOut] | None
    rules: list[RuleHitOut]
    """Every live and shadow rule that fired or failed (empty: none, or no live ruleset)."""
    ruleset_version: int | None
    """The live ruleset version evaluated (null: none was live)."""
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
    """The transaction as stored (absent optional fields are null; the IP in canonical form)."""

    transaction_id: str
    timestamp: datetime
    customer_id: str
    terminal_id: str
    amount: float
    currency: str | None
    merchant_category: str | None
    merchant_country: str | None
    card_country: str | None
    channel: str | None
    device_id: str | None
    ip: str | None
    attributes: dict[str, str | float | bool] | None
    received_at: datetime

    @classmethod
    def of(cls, tx: Transaction, received_at: datetime) -> TransactionView:
        return cls(
            transaction_id=tx.transaction_id,
            timestamp=tx.timestamp,
            customer_id=tx.customer_id,
            terminal_id=tx.terminal_id,
            amount=tx.amount,
            currency=tx.currency,
            merchant_category=tx.merchant_category,
            merchant_country=tx.merchant_country,
            card_country=tx.card_country,
            channel=tx.channel,
            device_id=tx.device_id,
            ip=tx.ip,
            attributes=tx.attributes,
            received_at=received_at,
        )


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
