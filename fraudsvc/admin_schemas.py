"""msgspec Structs of the admin routes: lists, rulesets, backtests and the audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from msgspec import Meta, Struct

from fraudsvc.rules.ruleset import RuleSpec
from fraudsvc.rules.schema import ListKind

ListName = Annotated[
    str,
    Meta(
        pattern=r"^[a-z][a-z0-9_]{0,63}$",
        description="1-64 characters: a lower-case letter, then lower-case letters, digits or _",
        examples=["blocked_customers"],
    ),
]


class ListIn(Struct, forbid_unknown_fields=True):
    """A list's definition; its kind says what its values are and cannot change."""

    kind: Annotated[
        ListKind,
        Meta(
            description="customer, terminal, device, ip (addresses and CIDR networks), "
            "country, merchant_category or string"
        ),
    ]
    description: Annotated[str, Meta(max_length=1000)] = ""


class ListOut(Struct):
    name: str
    kind: str
    description: str
    entries: int
    created_at: datetime
    created_by: str
    updated_at: datetime


class EntryIn(Struct, forbid_unknown_fields=True):
    value: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=256,
            description="checked and stored in the list kind's canonical form (a country in "
            "upper case, an address or network in its canonical text)",
            examples=["C000042"],
        ),
    ]
    reason: Annotated[str, Meta(max_length=1000, examples=["confirmed stolen card"])] = ""
    expires_at: (
        Annotated[datetime, Meta(tz=True, description="the entry stops matching at this instant")]
        | None
    ) = None


class EntriesIn(Struct, forbid_unknown_fields=True):
    entries: Annotated[list[EntryIn], Meta(min_length=1, max_length=10_000)]
    source: Annotated[
        str, Meta(pattern=r"^[a-z][a-z0-9_-]{0,63}$", examples=["api", "chargebacks"])
    ] = "api"


class EntryOut(Struct):
    value: str
    reason: str
    source: str
    added_by: str
    added_at: datetime
    expires_at: datetime | None


class ListDetail(Struct):
    definition: ListOut
    entries: list[EntryOut]
    next_after: str | None
    """Pass as `after` to read the next page (null: the last page)."""


class EntriesAdded(Struct):
    added: int
    changed: int


class ListReplaced(Struct):
    """What replacing a list's content did (or, with dry_run, would do)."""

    dry_run: bool
    added: int
    changed: int
    removed: int
    examples: dict[str, list[str]]
    """Up to 20 values per change (added, changed, removed)."""


class RulesetIn(Struct, forbid_unknown_fields=True):
    """A new ruleset version: checked (every rule compiled) and stored as a draft."""

    rules: Annotated[list[RuleSpec], Meta(max_length=1000)]
    description: Annotated[str, Meta(max_length=1000)] = ""


class RulesetOut(Struct):
    version: int
    description: str
    rules: list[RuleSpec]
    created_at: datetime
    created_by: str
    live: bool
    published_at: datetime | None
    published_by: str | None


class BacktestIn(Struct, forbid_unknown_fields=True):
    start: Annotated[datetime, Meta(tz=True, description="first transaction time included")]
    end: Annotated[datetime, Meta(tz=True, description="transactions before this instant")]


class RuleResult(Struct):
    id: str
    action: str
    mode: str
    hits: int
    errors: int
    frauds: int
    precision: float | None
    """Share of the hits labelled fraud."""
    recall: float | None
    """Share of the period's frauds the rule hit."""
    fraud_amount: float
    """Amount of the frauds the rule hit."""
    genuine_amount: float
    """Amount of the genuine transactions the rule hit (blocked, for a block rule)."""


class DecisionChange(Struct):
    live: str
    backtest: str
    transactions: int


class BacktestOut(Struct):
    version: int
    start: datetime
    end: datetime
    transactions: int
    frauds: int
    fraud_amount: float
    decisions: dict[str, int]
    """Final decisions the ruleset (with the stored scores) would have made."""
    flagged_precision: float | None
    """Of the transactions it would review or block, the share labelled fraud."""
    flagged_recall: float | None
    caught_fraud_amount: float
    """Fraud amount it would review or block."""
    blocked_genuine_amount: float
    changed: int
    """Final decisions that differ from the ones made live."""
    changes: list[DecisionChange]
    rules: list[RuleResult]
    unreadable_vectors: int
    """Stored vectors of an unknown declaration: the rules saw their features as missing."""
    seconds: float
    per_second: float


class AuditOut(Struct):
    id: int
    at: datetime
    actor: str
    action: str
    subject: str
    details: Any


class RuleProblemOut(Struct):
    rule: str
    message: str
    column: int | None


LiveState = Literal["live", "draft"]
