"""The feature definitions: one spec, a batch path (polars) and an online path (one transaction).

Definitions (t is the transaction's UTC timestamp, D the label delay):

- `amount`; `is_weekend` (Saturday or Sunday, UTC); `is_night` (00:00-05:59 UTC).
- Customer windows w in (1h, 1d, 7d, 30d): the customer's transactions with t - w < ts < t, plus
  the transaction itself. `customer_nb_tx_<w>` counts them, `customer_mean_amount_<w>` averages
  their amounts. Other transactions at exactly t are left out, so the value does not depend on
  the order in which simultaneous transactions arrive.
- `customer_seconds_since_prev`: seconds since the customer's latest transaction with
  t - 30d < ts < t, or 30 days when there is none.
- `amount_over_customer_mean_30d`: amount / customer_mean_amount_30d (1 when that mean is 0).
- Terminal windows w in (1d, 7d, 30d), shifted back by D: the terminal's transactions with
  t - D - w < ts <= t - D. `terminal_nb_tx_<w>` counts them, `terminal_risk_<w>` is the share
  labelled fraud (0 when there are none). Only transactions at least D old enter, so no label
  younger than the delay can reach a feature.

The batch path computes every row of a file; the online path computes one transaction from the
window aggregates that the database returns for the bounds given by `customer_bounds` and
`terminal_bounds`. Both follow the definitions above, and the parity test holds them equal.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property

import numpy as np
import polars as pl

SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True)
class FeatureSpec:
    """What a model was trained on; travels with the model and must match the code to serve."""

    version: int = 1
    customer_windows: tuple[tuple[str, int], ...] = (
        ("1h", 3_600),
        ("1d", 86_400),
        ("7d", 7 * 86_400),
        ("30d", 30 * 86_400),
    )
    terminal_windows: tuple[tuple[str, int], ...] = (
        ("1d", 86_400),
        ("7d", 7 * 86_400),
        ("30d", 30 * 86_400),
    )
    label_delay_seconds: int = 7 * 86_400
    night_end_hour: int = 6
    categorical: tuple[str, ...] = ("is_weekend", "is_night")

    @cached_property
    def names(self) -> tuple[str, ...]:
        names = ["amount", "is_weekend", "is_night"]
        for label, _ in self.customer_windows:
            names += [f"customer_nb_tx_{label}", f"customer_mean_amount_{label}"]
        names += ["customer_seconds_since_prev", "amount_over_customer_mean_30d"]
        for label, _ in self.terminal_windows:
            names += [f"terminal_nb_tx_{label}", f"terminal_risk_{label}"]
        return tuple(names)

    @property
    def longest_customer_window(self) -> int:
        return max(seconds for _, seconds in self.customer_windows)

    @property
    def label_delay(self) -> timedelta:
        return timedelta(seconds=self.label_delay_seconds)

    def to_dict(self) -> dict[str, object]:
        return {
            "version": self.version,
            "names": list(self.names),
            "customer_windows": [list(w) for w in self.customer_windows],
            "terminal_windows": [list(w) for w in self.terminal_windows],
            "label_delay_seconds": self.label_delay_seconds,
            "night_end_hour": self.night_end_hour,
            "categorical": list(self.categorical),
        }

    @cached_property
    def hash(self) -> str:
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def customer_bounds(self, t: datetime) -> list[datetime]:
        """Exclusive lower bounds of the customer windows (the upper bound is t, exclusive)."""
        return [t - timedelta(seconds=seconds) for _, seconds in self.customer_windows]

    def terminal_bounds(self, t: datetime) -> tuple[datetime, list[datetime]]:
        """Inclusive upper bound t - D and the exclusive lower bounds t - D - w."""
        end = t - self.label_delay
        return end, [end - timedelta(seconds=seconds) for _, seconds in self.terminal_windows]


FEATURE_SPEC = FeatureSpec()


def spec_mismatch(spec: FeatureSpec, stored: dict[str, object], stored_hash: str) -> str | None:
    """Why a model's stored spec cannot be served by this code, or None when it matches."""
    if stored_hash == spec.hash and stored == spec.to_dict():
        return None
    ours, theirs = spec.to_dict(), stored
    differing = sorted(k for k in set(ours) | set(theirs) if ours.get(k) != theirs.get(k))
    return (
        f"feature spec differs from this code (hash {stored_hash[:12]} vs {spec.hash[:12]}; "
        f"fields: {', '.join(differing) or 'hash only'}); retrain with this version of fraudsvc"
    )


# --------------------------------------------------------------------------- online path


@dataclass(frozen=True)
class CustomerHistory:
    """Aggregates of the customer's earlier transactions, one entry per customer window."""

    counts: tuple[int, ...]
    amount_sums: tuple[float, ...]
    latest: datetime | None
    """Latest transaction strictly before t within the longest window."""


@dataclass(frozen=True)
class TerminalHistory:
    """Aggregates of the terminal's delayed windows, one entry per terminal window."""

    counts: tuple[int, ...]
    fraud_counts: tuple[int, ...]


def online_vector(
    spec: FeatureSpec,
    timestamp: datetime,
    amount: float,
    customer: CustomerHistory,
    terminal: TerminalHistory,
) -> list[float]:
    """The feature vector of one transaction, in `spec.names` order."""
    t = timestamp.astimezone(UTC)
    vector = [
        float(amount),
        1.0 if t.weekday() >= 5 else 0.0,
        1.0 if t.hour < spec.night_end_hour else 0.0,
    ]
    mean_longest = 0.0
    longest = spec.longest_customer_window
    for (_, seconds), count, total in zip(
        spec.customer_windows, customer.counts, customer.amount_sums, strict=True
    ):
        n = count + 1
        mean = (total + amount) / n
        vector += [float(n), mean]
        if seconds == longest:
            mean_longest = mean
    gap = float(longest) if customer.latest is None else (t - customer.latest).total_seconds()
    vector += [gap, 1.0 if mean_longest == 0.0 else amount / mean_longest]
    for count, frauds in zip(terminal.counts, terminal.fraud_counts, strict=True):
        vector += [float(count), frauds / count if count else 0.0]
    return vector


# --------------------------------------------------------------------------- batch path


def _terminal_cumulative(frame: pl.DataFrame) -> pl.DataFrame:
    """Per terminal and timestamp: how many transactions (and frauds) have ts <= that timestamp."""
    return (
        frame.select("terminal_id", "timestamp", pl.col("is_fraud").cast(pl.Int64).alias("f"))
        .sort("terminal_id", "timestamp")
        .with_columns(
            cum_n=pl.int_range(1, pl.len() + 1).over("terminal_id"),
            cum_f=pl.col("f").cum_sum().over("terminal_id"),
        )
        .group_by("terminal_id", "timestamp", maintain_order=True)
        .agg(pl.col("cum_n").last(), pl.col("cum_f").last())
        .sort("timestamp")
    )


def _count_at(
    frame: pl.DataFrame, cumulative: pl.DataFrame, at: pl.Expr, suffix: str
) -> pl.DataFrame:
    """Join the terminal's cumulative counts as of `at` (ts <= at) onto every row."""
    probe = frame.select("_i", "terminal_id", at.alias("_at")).sort("_at")
    joined = probe.join_asof(
        cumulative.rename({"timestamp": "_at"}),
        on="_at",
        by="terminal_id",
        strategy="backward",
        check_sortedness=False,
    )
    return joined.select(
        "_i",
        pl.col("cum_n").fill_null(0).alias(f"n_{suffix}"),
        pl.col("cum_f").fill_null(0).alias(f"f_{suffix}"),
    )


def batch_features(frame: pl.DataFrame, spec: FeatureSpec = FEATURE_SPEC) -> pl.DataFrame:
    """Add the feature columns to a contract frame (needs `is_fraud`); row order is kept."""
    if "is_fraud" not in frame.columns:
        raise ValueError("batch features need the is_fraud column (terminal risk)")
    df = frame.with_row_index("_i")
    ts = pl.col("timestamp")
    out = df.with_columns(
        pl.col("amount").cast(pl.Float64),
        is_weekend=(ts.dt.weekday() >= 6).cast(pl.Float64),
        is_night=(ts.dt.hour() < spec.night_end_hour).cast(pl.Float64),
        _one=pl.lit(1.0),
    )
    customer_cols: list[pl.Expr] = []
    for label, seconds in spec.customer_windows:
        window = f"{seconds}s"
        others_n = (
            pl.col("_one")
            .rolling_sum_by("timestamp", window, closed="none")
            .over("customer_id")
            .fill_null(0.0)
        )
        others_sum = (
            pl.col("amount")
            .rolling_sum_by("timestamp", window, closed="none")
            .over("customer_id")
            .fill_null(0.0)
        )
        customer_cols += [
            (others_n + 1.0).alias(f"customer_nb_tx_{label}"),
            ((others_sum + pl.col("amount")) / (others_n + 1.0)).alias(
                f"customer_mean_amount_{label}"
            ),
        ]
    longest = spec.longest_customer_window
    previous = ts.rolling_max_by("timestamp", f"{longest}s", closed="none").over("customer_id")
    out = out.with_columns(
        *customer_cols,
        customer_seconds_since_prev=(
            (ts - previous).dt.total_microseconds().cast(pl.Float64) / 1e6
        ).fill_null(float(longest)),
    )
    longest_label = next(lab for lab, sec in spec.customer_windows if sec == longest)
    mean_longest = pl.col(f"customer_mean_amount_{longest_label}")
    out = out.with_columns(
        amount_over_customer_mean_30d=pl.when(mean_longest == 0.0)
        .then(1.0)
        .otherwise(pl.col("amount") / mean_longest)
    )

    cumulative = _terminal_cumulative(df)
    end = ts - pl.duration(seconds=spec.label_delay_seconds)
    counts = _count_at(df, cumulative, end, "end")
    for label, seconds in spec.terminal_windows:
        counts = counts.join(
            _count_at(df, cumulative, end - pl.duration(seconds=seconds), label), on="_i"
        )
    terminal_cols: list[pl.Expr] = []
    for label, _ in spec.terminal_windows:
        n = (pl.col("n_end") - pl.col(f"n_{label}")).cast(pl.Float64)
        f = (pl.col("f_end") - pl.col(f"f_{label}")).cast(pl.Float64)
        terminal_cols += [
            n.alias(f"terminal_nb_tx_{label}"),
            pl.when(n > 0).then(f / n).otherwise(0.0).alias(f"terminal_risk_{label}"),
        ]
    out = out.join(counts.select("_i", *terminal_cols), on="_i").sort("_i")
    return out.drop("_i", "_one")


def feature_matrix(frame: pl.DataFrame, spec: FeatureSpec = FEATURE_SPEC) -> np.ndarray:
    """The spec's columns of a featured frame as a float64 matrix."""
    return frame.select(spec.names).to_numpy().astype(np.float64, copy=False)
