"""The online path: one transaction's feature vector from the aggregates of its spans.

The database returns, for each span of the declaration, the aggregates of the entity's other
transactions in it (`SpanValue`; None when the entity's key has a missing field). Every value here
is computed with the same operations, in the same order, as the batch path in `batch.py`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC

from fraudsvc.features.codes import category_code
from fraudsvc.features.declaration import (
    Amount,
    Category,
    Declaration,
    Differs,
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
    t = tx.timestamp.astimezone(UTC)
    t_us = epoch_us(t)
    values: dict[str, float] = {}
    for f in decl.features:
        value: float
        if isinstance(f, Amount):
            value = float(tx.amount_minor) / float(decl.amount_scale)
        elif isinstance(f, Hour):
            value = float(t.hour)
        elif isinstance(f, Weekend):
            value = 1.0 if t.weekday() >= 5 else 0.0
        elif isinstance(f, Night):
            value = 1.0 if t.hour < f.end_hour else 0.0
        elif isinstance(f, Category):
            value = category_code(f.field, tx.value(f.field))
        elif isinstance(f, Differs):
            left, right = tx.value(f.left), tx.value(f.right)
            value = NAN if left is None or right is None else float(left != right)
        elif isinstance(f, Ratio):
            num, den = values[f.numerator], values[f.denominator]
            if math.isnan(num) or math.isnan(den):
                value = NAN
            else:
                value = f.when_zero if den == 0.0 else num / den
        else:
            span = Span(f.entity, f.seconds, f.delay)
            value = window_value(f, decl.amount_scale, tx, t_us, spans[span])
        values[f.name] = value
    return [values[name] for name in decl.names]


def entity_key(decl: Declaration, entity: str, tx: Transaction) -> tuple[str, ...] | None:
    """The entity's key values for this transaction; None when a field is missing."""
    values = tuple(tx.value(field) for field in decl.entity[entity].fields)
    return None if any(v is None for v in values) else values
