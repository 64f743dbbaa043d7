"""Hand-made transaction timelines and a brute-force reading of the feature definitions.

`reference_vector` evaluates the definitions in `fraudsvc.features` literally, row by row, from
the frame; it is slow and obviously right, which is what the batch and online paths are held to.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from fraudsvc.features import (
    FEATURE_SPEC,
    CustomerHistory,
    FeatureSpec,
    TerminalHistory,
    online_vector,
)

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # a Monday


def frame(rows: list[tuple[str, datetime, str, str, float, int]]) -> pl.DataFrame:
    """Rows of (transaction_id, timestamp, customer_id, terminal_id, amount, is_fraud)."""
    return pl.DataFrame(
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
    ).sort("timestamp", "transaction_id")


def histories(
    df: pl.DataFrame, row: dict[str, object], spec: FeatureSpec = FEATURE_SPEC
) -> tuple[CustomerHistory, TerminalHistory]:
    t = row["timestamp"]
    assert isinstance(t, datetime)
    mine = df.filter(pl.col("customer_id") == row["customer_id"])
    counts, sums = [], []
    for low in spec.customer_bounds(t):
        w = mine.filter((pl.col("timestamp") > low) & (pl.col("timestamp") < t))
        counts.append(w.height)
        sums.append(float(w["amount"].sum()))
    longest = spec.customer_bounds(t)[-1]
    prev = mine.filter((pl.col("timestamp") > longest) & (pl.col("timestamp") < t))
    latest = prev["timestamp"].max() if prev.height else None
    assert latest is None or isinstance(latest, datetime)
    term = df.filter(pl.col("terminal_id") == row["terminal_id"])
    end, lows = spec.terminal_bounds(t)
    tc, tf = [], []
    for low in lows:
        w = term.filter((pl.col("timestamp") > low) & (pl.col("timestamp") <= end))
        tc.append(w.height)
        tf.append(int(w["is_fraud"].sum()))
    return (
        CustomerHistory(tuple(counts), tuple(sums), latest),
        TerminalHistory(tuple(tc), tuple(tf)),
    )


def reference_vector(df: pl.DataFrame, index: int, spec: FeatureSpec = FEATURE_SPEC) -> list[float]:
    row = df.row(index, named=True)
    customer, terminal = histories(df, row, spec)
    return online_vector(spec, row["timestamp"], row["amount"], customer, terminal)


def at(days: float = 0, hours: float = 0, seconds: float = 0) -> datetime:
    return T0 + timedelta(days=days, hours=hours, seconds=seconds)
