"""The feature declaration: every feature as data, which the batch path, the online path and the
time buckets all follow.

A declaration lists entities (a key of one field or a pair of fields, such as the customer, or the
customer and the device) and features in vector order. Row features read the transaction alone;
window features aggregate an entity's earlier transactions over a time window:

- Windows ending at the transaction (`delay` 0) hold the entity's other transactions with
  t - w < ts < t, plus the transaction itself: `count`, `amount_sum` and `amount_mean` include it.
  Other transactions at exactly t are left out, so a value never depends on the order in which
  simultaneous transactions arrive. `seconds_since_prev` is t minus the latest of the others (w
  when there is none).
- Shifted windows (`delay` d > 0) hold the entity's transactions with t - d - w < ts <= t - d.
  `fraud_count` and `fraud_share` need d >= the label delay, so that no label younger than the
  delay reaches a feature.
- A window feature of a transaction whose entity key has a missing field is missing (NaN).

Amounts are integer minor units: sums are exact in any order, and a mean is one division,
float(sum) / float(count * scale), written the same way in every path.

The declaration and its hash travel with the model. `problems()` says why this code cannot compute
a declaration (an unknown field, aggregate or entity, a fraud aggregate inside the label delay...);
a model carrying such a declaration is refused with those reasons.
"""

from __future__ import annotations

import hashlib
from functools import cached_property
from typing import Any, Literal

import msgspec

from fraudsvc.transaction import AMOUNT_SCALE, KEY_FIELDS

DAY = 86_400
HOUR = 3_600
DEFERRABLE_DELAY = HOUR
"""An entity whose windows all end at least this far back can have its buckets built after the
fact (see `Declaration.deferred`): the writes of live transactions never touch them."""
Aggregate = Literal[
    "count", "amount_sum", "amount_mean", "seconds_since_prev", "fraud_count", "fraud_share"
]
AGGREGATES: tuple[str, ...] = Aggregate.__args__  # type: ignore[attr-defined]
FRAUD_AGGREGATES = ("fraud_count", "fraud_share")
CATEGORY_FIELDS = ("channel", "merchant_category", "merchant_country", "card_country", "currency")
"""Fields a `category` feature can encode as a LightGBM categorical (see codes.py)."""


class _Feature(msgspec.Struct, frozen=True, tag_field="kind"):
    name: str


class Amount(_Feature, frozen=True, tag="amount"):
    """The amount in the reporting currency."""


class Hour(_Feature, frozen=True, tag="hour"):
    """Hour of the day, UTC (0-23)."""


class Weekend(_Feature, frozen=True, tag="weekend"):
    """1 on Saturday and Sunday (UTC), else 0."""


class Night(_Feature, frozen=True, tag="night"):
    """1 from 00:00 to end_hour (UTC), else 0."""

    end_hour: int = 6


class Category(_Feature, frozen=True, tag="category"):
    """A categorical field as its integer code (missing: NaN); LightGBM treats it as categorical."""

    field: str


class Differs(_Feature, frozen=True, tag="differs"):
    """1 when two fields differ (e.g. card and merchant country), 0 when equal, NaN if missing."""

    left: str
    right: str


class Ratio(_Feature, frozen=True, tag="ratio"):
    """numerator / denominator of two earlier features; `when_zero` if the denominator is 0."""

    numerator: str
    denominator: str
    when_zero: float = 1.0


class Window(_Feature, frozen=True, tag="window"):
    """An aggregate of the entity's transactions over a window (see the module docstring)."""

    entity: str
    aggregate: Aggregate
    seconds: int
    delay: int = 0


Feature = Amount | Hour | Weekend | Night | Category | Differs | Ratio | Window


class Entity(msgspec.Struct, frozen=True):
    """What a window groups by: one field, or a pair such as (customer_id, device_id)."""

    name: str
    fields: tuple[str, ...]


class Span(msgspec.Struct, frozen=True):
    """One window read from the data: the aggregates of an entity over (seconds, delay).
    Window features sharing a span (the count and the mean of one window) read it once."""

    entity: str
    seconds: int
    delay: int


class Declaration(msgspec.Struct, frozen=True, dict=True):
    version: int
    entities: tuple[Entity, ...]
    features: tuple[Feature, ...]
    label_delay: int = 7 * DAY
    amount_scale: int = AMOUNT_SCALE
    levels: tuple[int, ...] = (DAY, HOUR, 60)
    """Widths of the time buckets in seconds, coarsest first; each divides the one before."""

    @cached_property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @cached_property
    def categorical(self) -> tuple[str, ...]:
        """Features LightGBM (and LIME) treat as categories."""
        return tuple(f.name for f in self.features if isinstance(f, Category | Weekend | Night))

    @cached_property
    def lightgbm_categorical(self) -> tuple[str, ...]:
        """Integer-coded categories given to LightGBM as categorical (0/1 flags need not be)."""
        return tuple(f.name for f in self.features if isinstance(f, Category))

    @cached_property
    def windows(self) -> tuple[Window, ...]:
        return tuple(f for f in self.features if isinstance(f, Window))

    @cached_property
    def spans(self) -> tuple[Span, ...]:
        """The distinct windows to read, in first-use order."""
        seen: dict[Span, None] = {}
        for w in self.windows:
            seen.setdefault(Span(w.entity, w.seconds, w.delay), None)
        return tuple(seen)

    @cached_property
    def entity(self) -> dict[str, Entity]:
        return {e.name: e for e in self.entities}

    @cached_property
    def deferred(self) -> frozenset[str]:
        """Entities whose windows all end at least DEFERRABLE_DELAY back (the terminal's, a label
        delay back): their buckets are folded in by the worker for rows older than a horizon,
        so a live transaction's write never touches them (a hot merchant's rows are not
        contended), and rows that arrive late, older than the horizon, are bucketed as they are
        written. Reads add the raw rows above the horizon, so they stay exact."""
        delays: dict[str, int] = {}
        for w in self.windows:
            delays[w.entity] = min(delays.get(w.entity, w.delay), w.delay)
        return frozenset(name for name, delay in delays.items() if delay >= DEFERRABLE_DELAY)

    @cached_property
    def used_entities(self) -> tuple[Entity, ...]:
        used = {s.entity for s in self.spans}
        return tuple(e for e in self.entities if e.name in used)

    def to_dict(self) -> dict[str, Any]:
        built: dict[str, Any] = msgspec.to_builtins(self)
        return built

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Declaration:
        return msgspec.convert(data, type=cls)

    @cached_property
    def hash(self) -> str:
        canonical = msgspec.json.encode(msgspec.to_builtins(self, order="sorted"))
        return hashlib.sha256(canonical).hexdigest()

    def problems(self) -> list[str]:
        """Why this code cannot compute the declaration; empty when it can."""
        return _problems(self)


def _problems(d: Declaration) -> list[str]:
    out: list[str] = []
    if d.amount_scale != AMOUNT_SCALE:
        out.append(f"amount_scale {d.amount_scale}: this install holds amounts x{AMOUNT_SCALE}")
    if not d.levels or any(
        w <= 0 or DAY % w or (i and d.levels[i - 1] % w) for i, w in enumerate(d.levels)
    ):
        out.append(f"levels {list(d.levels)}: each must divide a day and the level before it")
    if d.label_delay < 0:
        out.append("label_delay must be >= 0")
    names = [e.name for e in d.entities]
    if len(set(names)) != len(names):
        out.append("entity names must be unique")
    for e in d.entities:
        unknown = [f for f in e.fields if f not in KEY_FIELDS]
        if not e.fields or len(e.fields) > 2 or unknown or len(set(e.fields)) != len(e.fields):
            out.append(
                f"entity {e.name}: a key is one or two distinct fields of "
                f"{', '.join(KEY_FIELDS)} (got {list(e.fields)})"
            )
    seen: set[str] = set()
    for f in d.features:
        if f.name in seen:
            out.append(f"feature {f.name}: declared twice")
        out.extend(f"feature {f.name}: {why}" for why in _feature_problems(d, f, seen))
        seen.add(f.name)
    return out


def _feature_problems(d: Declaration, f: Feature, earlier: set[str]) -> list[str]:
    if isinstance(f, Night) and not 0 < f.end_hour <= 24:
        return ["end_hour must be 1-24"]
    if isinstance(f, Category) and f.field not in CATEGORY_FIELDS:
        return [f"field {f.field!r} has no category code (known: {', '.join(CATEGORY_FIELDS)})"]
    if isinstance(f, Differs) and (f.left not in KEY_FIELDS or f.right not in KEY_FIELDS):
        return [f"compares {f.left!r} with {f.right!r}: both must be of {', '.join(KEY_FIELDS)}"]
    if isinstance(f, Ratio) and not {f.numerator, f.denominator} <= earlier:
        return ["a ratio's numerator and denominator must be declared before it"]
    if isinstance(f, Window):
        why = []
        if f.entity not in d.entity:
            why.append(f"unknown entity {f.entity!r}")
        if f.aggregate not in AGGREGATES:
            why.append(f"unknown aggregate {f.aggregate!r} (known: {', '.join(AGGREGATES)})")
        if f.seconds <= 0 or f.delay < 0:
            why.append("seconds must be > 0 and delay >= 0")
        if f.aggregate in FRAUD_AGGREGATES and f.delay < d.label_delay:
            why.append(
                f"{f.aggregate} needs delay >= the label delay ({d.label_delay} s), or labels "
                "not yet known would reach the feature"
            )
        if f.aggregate == "seconds_since_prev" and f.delay:
            why.append("seconds_since_prev is defined for windows ending at the transaction")
        return why
    return []
