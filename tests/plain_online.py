"""The online path's plain definitions, as they were before issue 15 made them fast: the oracle
the fast `WindowRead.params` / `WindowRead.values` / `online_vector` are held to bit for bit.

`plain_params` builds the window read's arguments span by span with `split` (the recursive
definition of a range's pieces) and dictionaries of pieces; `plain_values` sums the rows back
into each span; `plain_vector` evaluates each feature of the declaration in turn. They are
the code the service ran (fraudsvc/db/windows.py and fraudsvc/features/online.py at 14a978d).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC
from typing import Any

from fraudsvc.db.buckets import key_text
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
from fraudsvc.features.online import entity_key, window_value
from fraudsvc.features.spans import SpanValue, epoch_us, span_range, split
from fraudsvc.transaction import Transaction

PlainPlan = list[list[tuple[int, int]] | None]
"""Per span, the (kind, piece) pairs that sum to it; None when the entity's key is missing."""
NAN = math.nan


def plain_params(decl: Declaration, tx: Transaction) -> tuple[list[object], PlainPlan]:
    """The statement's arguments, and the plan that sums its pieces back into spans."""
    entities = decl.used_entities
    t_us = epoch_us(tx.timestamp)
    buckets: dict[tuple[str, str, int, int, int], int] = {}
    raws: dict[str, dict[tuple[int, int, bool], int]] = {e.name: {} for e in entities}
    keys = {e.name: entity_key(decl, e.name, tx) for e in entities}
    kinds = {e.name: i for i, e in enumerate(entities, start=1)}
    plan: PlainPlan = []
    for span in decl.spans:
        key = keys[span.entity]
        if key is None:
            plan.append(None)
            continue
        lo, hi = span_range(span, t_us)
        pieces = split(lo, hi, decl.levels)
        own = raws[span.entity]
        kind = kinds[span.entity]
        mine = [
            (0, buckets.setdefault((span.entity, key_text(key), w, a, b), len(buckets)))
            for w, a, b in pieces.buckets
        ]
        mine += [(kind, own.setdefault((a, b, False), len(own))) for a, b in pieces.raw]
        if span.entity in decl.deferred:
            mine.append((kind, own.setdefault((lo, hi, True), len(own))))
        plan.append(mine)
    args: list[object] = [
        tx.transaction_id,
        list(buckets.values()),
        [p[0] for p in buckets],
        [p[1] for p in buckets],
        [p[2] for p in buckets],
        [p[3] for p in buckets],
        [p[4] for p in buckets],
    ]
    for e in entities:
        own = raws[e.name]
        key = keys[e.name]
        args += [
            list(own.values()),
            [p[0] for p in own],
            [p[1] for p in own],
        ]
        if e.name in decl.deferred:
            args.append([p[2] for p in own])
        args += key if key is not None else (None,) * len(e.fields)
    lows = [p[0] for own in raws.values() for p in own]
    highs = [p[1] for own in raws.values() for p in own]
    args += [min(lows, default=t_us), max(highs, default=t_us)]
    return args, plan


def plain_values(
    decl: Declaration, rows: Sequence[Sequence[Any]], plan: PlainPlan
) -> tuple[bool, dict[Span, SpanValue | None]]:
    """Whether the id is stored, and each span's aggregates (None: the key is missing)."""
    pieces: dict[tuple[int, int], tuple[int, int, int, int | None]] = {}
    exists = False
    for kind, i, n, amount, frauds, latest in rows:
        if kind == -1:
            exists = n > 0
        else:
            pieces[(kind, i)] = (n, amount, frauds, latest)
    out: dict[Span, SpanValue | None] = {}
    for span, mine in zip(decl.spans, plan, strict=True):
        if mine is None:
            out[span] = None
            continue
        count = amount_minor = fraud_count = 0
        latest_us: int | None = None
        for piece in mine:
            n, amount, frauds, latest = pieces[piece]
            count += n
            amount_minor += amount
            fraud_count += frauds
            if latest is not None and (latest_us is None or latest > latest_us):
                latest_us = latest
        out[span] = SpanValue(count, amount_minor, fraud_count, latest_us)
    return exists, out


def plain_vector(
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
            assert isinstance(f, Window)
            span = Span(f.entity, f.seconds, f.delay)
            value = window_value(f, decl.amount_scale, tx, t_us, spans[span])
        values[f.name] = value
    return [values[name] for name in decl.names]


def pieces_of(decl: Declaration, args: list[Any]) -> list[tuple[int, int]]:
    """(kind, id) of every piece the window read's arguments ask for: kind 0 the buckets ($2),
    kind k the raw pieces of the declaration's k-th entity (see fraudsvc/db/windows.py)."""
    pieces = [(0, i) for i in args[1]]
    at = 7
    for kind, e in enumerate(decl.used_entities, start=1):
        pieces += [(kind, i) for i in args[at]]
        at += (4 if e.name in decl.deferred else 3) + len(e.fields)
    return pieces
