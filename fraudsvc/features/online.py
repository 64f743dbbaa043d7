"""The online path: one transaction's feature vector from the aggregates of its spans.

The database returns, for each span of the declaration, the aggregates of the entity's other
transactions in it (`SpanValue`; None when the entity's key has a missing field). Every value here
is computed with the same operations, in the same order, as the batch path in `batch.py`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from fraudsvc.features.codes import category_code
from fraudsvc.features.declaration import (
    Amount,
    Category,
    Declaration,
    Differs,
    Feature,
    Hour,
    Night,
    Ratio,
    Span,
    Weekend,
    Window,
)
from fraudsvc.features.spans import US_PER_SECOND, SpanValue, epoch_us
from fraudsvc.transaction import Transaction

NAN = math.nan


def window_value(w: Window, scale: int, tx: Transaction, t_us: int, v: SpanValue | None) -> float:
    if v is None:
        return NAN
    current = w.delay == 0  # a window ending at the transaction includes it
    n = v.count + 1 if current else v.count
    total = v.amount_minor + tx.amount_minor if current else v.amount_minor
    match w.aggregate:
        case "count":
            return float(n)
        case "amount_sum":
            return float(total) / float(scale)
        case "amount_mean":
            return float(total) / float(n * scale) if n else 0.0
        case "seconds_since_prev":
            if v.latest_us is None:
                return float(w.seconds)
            return float(t_us - v.latest_us) / float(US_PER_SECOND)
        case "fraud_count":
            return float(v.frauds)
        case "fraud_share":
            return float(v.frauds) / float(v.count) if v.count else 0.0
    raise ValueError(f"unknown aggregate {w.aggregate!r}")


def online_vector(
    decl: Declaration, tx: Transaction, spans: Mapping[Span, SpanValue | None]
) -> list[float]:
    """The vector in `decl.names` order."""
    compiled = _COMPILED.get(decl.hash)
    if compiled is None:
        if len(_COMPILED) >= 16:
            _COMPILED.clear()
        compiled = _COMPILED[decl.hash] = _Compiled(decl)
    t = tx.timestamp.astimezone(UTC)
    t_us = epoch_us(t)
    views = [spans[span] for span in compiled.spans]
    out: list[float] = []
    for step in compiled.steps:
        out.append(step(tx, t, t_us, views, out))
    return out if compiled.order is None else [out[i] for i in compiled.order]


Step = Callable[[Transaction, datetime, int, list[SpanValue | None], list[float]], float]
"""One feature's value from the transaction, its UTC time (as a datetime and in µs), the
declaration's span values in `decl.spans` order and the features before it."""


class _Compiled:
    """A declaration as one small function per feature, in vector order.

    What does not depend on the transaction is decided once: each feature's kind (an
    isinstance chain per feature per request before), the span a window reads (a Span built
    and hashed per window feature), a ratio's operands (as positions in the vector). Each
    function computes what `online_vector` did before issue 15 (kept in tests/plain_online.py),
    with the same operations in the same order; window features call `window_value` itself."""

    def __init__(self, decl: Declaration) -> None:
        self.spans = decl.spans
        span_at = {span: i for i, span in enumerate(decl.spans)}
        latest: dict[str, int] = {}  # a name's value is its latest feature's, as in a dict
        self.steps: list[Step] = []
        for i, f in enumerate(decl.features):
            self.steps.append(_step(decl, f, span_at, latest))
            latest[f.name] = i
        order = [latest[name] for name in decl.names]
        self.order = None if order == list(range(len(order))) else order


def _step(decl: Declaration, f: Feature, span_at: dict[Span, int], earlier: dict[str, int]) -> Step:
    scale = decl.amount_scale
    if isinstance(f, Amount):
        return lambda tx, t, t_us, views, out: float(tx.amount_minor) / float(scale)
    if isinstance(f, Hour):
        return lambda tx, t, t_us, views, out: float(t.hour)
    if isinstance(f, Weekend):
        return lambda tx, t, t_us, views, out: 1.0 if t.weekday() >= 5 else 0.0
    if isinstance(f, Night):
        end_hour = f.end_hour
        return lambda tx, t, t_us, views, out: 1.0 if t.hour < end_hour else 0.0
    if isinstance(f, Category):
        field = f.field
        return lambda tx, t, t_us, views, out: category_code(field, getattr(tx, field))
    if isinstance(f, Differs):
        return _differs(f.left, f.right)
    if isinstance(f, Ratio):
        return _ratio(earlier[f.numerator], earlier[f.denominator], f.when_zero)
    return _window(f, scale, span_at[Span(f.entity, f.seconds, f.delay)])


def _differs(left_field: str, right_field: str) -> Step:
    def step(
        tx: Transaction, t: datetime, t_us: int, views: list[SpanValue | None], out: list[float]
    ) -> float:
        left, right = getattr(tx, left_field), getattr(tx, right_field)
        return NAN if left is None or right is None else float(left != right)

    return step


def _ratio(numerator: int, denominator: int, when_zero: float) -> Step:
    def step(
        tx: Transaction, t: datetime, t_us: int, views: list[SpanValue | None], out: list[float]
    ) -> float:
        num, den = out[numerator], out[denominator]
        if math.isnan(num) or math.isnan(den):
            return NAN
        return when_zero if den == 0.0 else num / den

    return step


def _window(w: Window, scale: int, at: int) -> Step:
    """`window_value` of one window feature, reading the span at `at` (one definition of the
    aggregates: the batch path's twin is `batch.py`)."""
    return lambda tx, t, t_us, views, out: window_value(w, scale, tx, t_us, views[at])


_COMPILED: dict[str, _Compiled] = {}
"""Per declaration hash (a declaration is served for its model's lifetime)."""


def entity_key(decl: Declaration, entity: str, tx: Transaction) -> tuple[str, ...] | None:
    """The entity's key values for this transaction; None when a field is missing."""
    values = tuple(tx.value(field) for field in decl.entity[entity].fields)
    return None if any(v is None for v in values) else values
