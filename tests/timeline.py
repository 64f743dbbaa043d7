"""Hand-made transaction timelines and a brute-force reading of the feature declaration.

`reference_vector` evaluates a declaration literally, row by row, from the frame: for each span it
filters the entity's rows with the span's own inequalities (t - w < ts < t; or t - d - w < ts <=
t - d) and counts them; it is slow and obviously right, which is what the batch path, the raw SQL
oracle and the bucketed read are all held to.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl
from hypothesis import strategies as st

from fraudsvc.contract import check_frame
from fraudsvc.features import DECLARATION, Declaration, Span, SpanValue, online_vector
from fraudsvc.features.spans import epoch_us
from fraudsvc.transaction import OPTIONAL_FIELDS, Transaction

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # a Monday
Row = tuple[str, datetime, str, str, float, int]

# the payment attributes of a random row: few values, so that pairs of fields repeat, and often
# missing (a card-present payment has no device or IP)
payment_attributes = st.fixed_dictionaries(
    {
        "device_id": st.sampled_from([None, "D1", "D2"]),
        "ip": st.sampled_from([None, "10.0.0.1", "2001:db8::1"]),
        "merchant_category": st.sampled_from([None, "5411", "5732"]),
        "channel": st.sampled_from([None, "ecommerce", "contactless"]),
        "card_country": st.sampled_from([None, "FR", "DE"]),
        "merchant_country": st.sampled_from([None, "FR", "GB"]),
    }
)


def frame(rows: list[Row], extra: list[dict[str, Any]] | None = None) -> pl.DataFrame:
    """A checked contract frame from rows of (transaction_id, timestamp, customer_id,
    terminal_id, amount, is_fraud), with optional payment attributes per row in `extra`."""
    df = pl.DataFrame(
        rows,
        schema={
            "transaction_id": pl.String,
            "timestamp": pl.Datetime("us", "UTC"),
            "customer_id": pl.String,
            "terminal_id": pl.String,
            "amount": pl.Float64,
            "is_fraud": pl.Int8,
        },
        orient="row",
    )
    if extra is not None:
        for name in OPTIONAL_FIELDS:
            values = [e.get(name) for e in extra]
            if name == "attributes":
                values = [None if v is None else json.dumps(v) for v in values]
            df = df.with_columns(pl.Series(name, values, dtype=pl.String))
    return check_frame(df, "timeline", require_labels=True).frame


def transaction(row: dict[str, Any]) -> Transaction:
    attributes = row.get("attributes")
    return Transaction(
        transaction_id=row["transaction_id"],
        timestamp=row["timestamp"],
        customer_id=row["customer_id"],
        terminal_id=row["terminal_id"],
        amount_minor=row["amount_minor"],
        **{n: row.get(n) for n in OPTIONAL_FIELDS if n != "attributes"},
        attributes=None if attributes is None else json.loads(attributes),
    )


def span_values(
    df: pl.DataFrame, row: dict[str, Any], decl: Declaration = DECLARATION
) -> dict[Span, SpanValue | None]:
    t = row["timestamp"]
    assert isinstance(t, datetime)
    out: dict[Span, SpanValue | None] = {}
    for span in decl.spans:
        fields = decl.entity[span.entity].fields
        if any(row.get(f) is None for f in fields):
            out[span] = None
            continue
        mine = df.filter(pl.all_horizontal(pl.col(f) == row[f] for f in fields))
        w, d = timedelta(seconds=span.seconds), timedelta(seconds=span.delay)
        ts = pl.col("timestamp")
        inside = (ts > t - w) & (ts < t) if span.delay == 0 else (ts > t - d - w) & (ts <= t - d)
        rows = mine.filter(inside)
        latest = rows["timestamp"].max() if rows.height else None
        assert latest is None or isinstance(latest, datetime)
        out[span] = SpanValue(
            count=rows.height,
            amount_minor=int(rows["amount_minor"].sum()),
            frauds=int(rows["is_fraud"].sum()),
            latest_us=None if latest is None else epoch_us(latest),
        )
    return out


def reference_vector(df: pl.DataFrame, index: int, decl: Declaration = DECLARATION) -> list[float]:
    row = df.row(index, named=True)
    return online_vector(decl, transaction(row), span_values(df, row, decl))


def assert_same_vectors(actual: np.ndarray, expected: np.ndarray, names: tuple[str, ...]) -> None:
    """Bit-for-bit equality (NaN equals NaN), naming the features that differ."""
    assert actual.shape == expected.shape
    same = (actual == expected) | (np.isnan(actual) & np.isnan(expected))
    if not same.all():
        bad = sorted({names[j] for j in np.flatnonzero(~same.all(axis=0))})
        rows = np.flatnonzero(~same.all(axis=1))[:5].tolist()
        raise AssertionError(f"features differ: {bad} (first rows {rows})")


def at(days: float = 0, hours: float = 0, seconds: float = 0) -> datetime:
    return T0 + timedelta(days=days, hours=hours, seconds=seconds)
