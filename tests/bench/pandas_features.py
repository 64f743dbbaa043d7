"""The Handbook's baseline features written the way pandas code usually writes them: the
reference the benchmark compares the polars path (`fraudsvc.features.batch_features` over the
baseline declaration) with. Amounts are summed as floats here, as pandas code would; the polars
path sums integer minor units, so means may differ in the last bits.

Same definitions as `fraudsvc.features` (t the transaction time, D the label delay):

- customer windows: `groupby(customer).rolling(w, on=timestamp, closed="neither")`, i.e. the
  customer's other transactions with t - w < ts < t, plus the transaction itself;
- seconds since the previous transaction: a rolling max of the timestamp over the same kind of
  30-day window (a plain `diff()` would give 0 for simultaneous transactions);
- terminal windows, delayed by D: each terminal's cumulative counts (transactions, frauds) per
  timestamp, joined with `merge_asof` at t - D and at t - D - w; the window is the difference.

Timestamps enter the rolling max as integer microseconds held in float64: exact up to 2^53 us
(285 years), so the seconds come out exactly as polars computes them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fraudsvc.features.default import BASELINE, CUSTOMER_WINDOWS, LABEL_DELAY, TERMINAL_WINDOWS

MICROS = 1_000_000.0


def to_pandas(frame: object) -> pd.DataFrame:
    """A polars contract frame as pandas, with the columns the features need (not timed)."""
    import polars as pl

    assert isinstance(frame, pl.DataFrame)
    columns = ["transaction_id", "timestamp", "customer_id", "terminal_id", "amount", "is_fraud"]
    return frame.select(columns).to_pandas()


NIGHT_END_HOUR = 6
LONGEST = max(seconds for _, seconds in CUSTOMER_WINDOWS)


def _customer_features(df: pd.DataFrame) -> pd.DataFrame:
    ordered = df[["customer_id", "timestamp", "amount"]].sort_values(
        ["customer_id", "timestamp"], kind="stable"
    )
    ordered["ts_us"] = ordered["timestamp"].dt.as_unit("us").astype("int64").astype("float64")
    grouped = ordered.groupby("customer_id", sort=False)
    out = pd.DataFrame(index=ordered.index)
    for label, seconds in CUSTOMER_WINDOWS:
        rolling = grouped.rolling(f"{seconds}s", on="timestamp", closed="neither")["amount"]
        others_n = rolling.count().fillna(0.0).to_numpy()
        others_sum = rolling.sum().fillna(0.0).to_numpy()
        n = others_n + 1.0
        out[f"customer_nb_tx_{label}"] = n
        out[f"customer_mean_amount_{label}"] = (others_sum + ordered["amount"].to_numpy()) / n
    longest = LONGEST
    previous = (
        grouped.rolling(f"{longest}s", on="timestamp", closed="neither")["ts_us"].max().to_numpy()
    )
    gap = (ordered["ts_us"].to_numpy() - previous) / MICROS
    out["customer_seconds_since_prev"] = np.where(np.isnan(previous), float(longest), gap)
    return out


def _terminal_features(df: pd.DataFrame) -> pd.DataFrame:
    history = df[["terminal_id", "timestamp", "is_fraud"]].sort_values(
        ["terminal_id", "timestamp"], kind="stable"
    )
    history["cum_n"] = history.groupby("terminal_id", sort=False).cumcount() + 1
    history["cum_f"] = history.groupby("terminal_id", sort=False)["is_fraud"].cumsum()
    # the counts as of each timestamp: the last of simultaneous transactions holds them all
    cumulative = (
        history.drop_duplicates(["terminal_id", "timestamp"], keep="last")[
            ["terminal_id", "timestamp", "cum_n", "cum_f"]
        ]
        .rename(columns={"timestamp": "at"})
        .sort_values("at", kind="stable")
    )
    unit = cumulative["at"].dt.unit  # merge_asof needs both keys in one resolution
    delay = pd.Timedelta(seconds=LABEL_DELAY)
    probe = pd.DataFrame({"terminal_id": df["terminal_id"], "end": df["timestamp"] - delay})

    def counts_at(shift: pd.Timedelta) -> tuple[np.ndarray, np.ndarray]:
        at = (probe["end"] - shift).dt.as_unit(unit)
        left = probe.assign(at=at).sort_values("at", kind="stable")
        joined = pd.merge_asof(
            left.reset_index(),
            cumulative,
            on="at",
            by="terminal_id",
            direction="backward",
            allow_exact_matches=True,
        ).set_index("index")
        joined = joined.reindex(df.index)
        return (
            joined["cum_n"].fillna(0).to_numpy(dtype=np.float64),
            joined["cum_f"].fillna(0).to_numpy(dtype=np.float64),
        )

    n_end, f_end = counts_at(pd.Timedelta(0))
    out = pd.DataFrame(index=df.index)
    for label, seconds in TERMINAL_WINDOWS:
        n_start, f_start = counts_at(pd.Timedelta(seconds=seconds))
        n = n_end - n_start
        f = f_end - f_start
        out[f"terminal_nb_tx_{label}"] = n
        with np.errstate(invalid="ignore", divide="ignore"):
            out[f"terminal_risk_{label}"] = np.where(n > 0, f / np.where(n > 0, n, 1.0), 0.0)
    return out


def pandas_features(df: pd.DataFrame) -> pd.DataFrame:
    """The baseline feature columns (in `BASELINE.names` order) for every row of `df`, in
    `df`'s order."""
    df = df.reset_index(drop=True)
    ts = df["timestamp"]
    out = pd.DataFrame(
        {
            "amount": df["amount"].astype("float64"),
            "is_weekend": (ts.dt.day_of_week >= 5).astype("float64"),
            "is_night": (ts.dt.hour < NIGHT_END_HOUR).astype("float64"),
        }
    )
    customer = _customer_features(df).reindex(df.index)
    terminal = _terminal_features(df)
    out = pd.concat([out, customer, terminal], axis=1)
    longest_label = next(label for label, seconds in CUSTOMER_WINDOWS if seconds == LONGEST)
    mean_longest = out[f"customer_mean_amount_{longest_label}"]
    out["amount_over_customer_mean_30d"] = np.where(
        mean_longest == 0.0, 1.0, out["amount"] / mean_longest.where(mean_longest != 0.0, 1.0)
    )
    return out[list(BASELINE.names)]
