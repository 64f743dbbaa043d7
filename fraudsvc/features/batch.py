"""The batch path: every row's features over a whole contract frame, in polars.

Spans ending at the transaction use polars' rolling windows by time over the entity's key, open
at both ends (the others strictly inside (t - w, t)). Shifted spans use cumulative counts per
entity joined as of t - d and t - d - w (ts <= bound), whose difference is the span
(t - d - w, t - d]. Sums are integer minor units; every division is written as in `online.py`.

A division by a constant goes through `contract.divided`: polars turns `x / 100.0` into
`x * 0.01`, which differs from the division in the last bit for about one value in seven, and
the parity tests compare bit for bit.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from fraudsvc.contract import divided
from fraudsvc.features.codes import category_code_expr
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
from fraudsvc.features.default import DECLARATION
from fraudsvc.features.spans import US_PER_SECOND
from fraudsvc.transaction import OPTIONAL_FIELDS

F64 = pl.Float64


def _span_columns(i: int) -> tuple[str, str, str, str]:
    return f"_n{i}", f"_s{i}", f"_f{i}", f"_l{i}"


def _rolling_span(span: Span, fields: list[str], i: int) -> list[pl.Expr]:
    """Aggregates of the others strictly inside (t - w, t)."""
    window = f"{span.seconds}s"
    n, s, f, latest = _span_columns(i)

    def rolling(expr: pl.Expr, how: str) -> pl.Expr:
        by = expr.rolling_sum_by if how == "sum" else expr.rolling_max_by
        return by("timestamp", window, closed="none").over(fields)

    return [
        rolling(pl.col("_one"), "sum").fill_null(0).alias(n),
        rolling(pl.col("amount_minor"), "sum").fill_null(0).alias(s),
        rolling(pl.col("_fraud"), "sum").fill_null(0).alias(f),
        rolling(pl.col("timestamp"), "max").alias(latest),
    ]


def _cumulative(df: pl.DataFrame, fields: list[str]) -> pl.DataFrame:
    """Per key and timestamp: count, amount and frauds of the key's rows with ts <= timestamp."""
    return (
        df.select(*fields, "timestamp", "amount_minor", "_fraud")
        .sort(*fields, "timestamp")
        .with_columns(
            _cn=pl.int_range(1, pl.len() + 1, dtype=pl.Int64).over(fields),
            _cs=pl.col("amount_minor").cum_sum().over(fields),
            _cf=pl.col("_fraud").cum_sum().over(fields),
        )
        .group_by(*fields, "timestamp", maintain_order=True)
        .agg(pl.col("_cn").last(), pl.col("_cs").last(), pl.col("_cf").last())
        .sort("timestamp")
    )


def _as_of(
    df: pl.DataFrame, cumulative: pl.DataFrame, fields: list[str], at: pl.Expr, tag: str
) -> pl.DataFrame:
    probe = df.select("_i", *fields, at.alias("_at")).sort("_at")
    joined = probe.join_asof(
        cumulative.rename({"timestamp": "_at"}),
        on="_at",
        by=fields,
        strategy="backward",
        check_sortedness=False,
    )
    return joined.select(
        "_i",
        pl.col("_cn").fill_null(0).alias(f"_cn{tag}"),
        pl.col("_cs").fill_null(0).alias(f"_cs{tag}"),
        pl.col("_cf").fill_null(0).alias(f"_cf{tag}"),
    )


def _shifted_span(df: pl.DataFrame, span: Span, fields: list[str], i: int) -> pl.DataFrame:
    """Aggregates of (t - d - w, t - d] as differences of cumulative counts."""
    cumulative = _cumulative(df, fields)
    end = pl.col("timestamp") - pl.duration(seconds=span.delay)
    hi = _as_of(df, cumulative, fields, end, "hi")
    lo = _as_of(df, cumulative, fields, end - pl.duration(seconds=span.seconds), "lo")
    n, s, f, latest = _span_columns(i)
    return hi.join(lo, on="_i").select(
        "_i",
        (pl.col("_cnhi") - pl.col("_cnlo")).alias(n),
        (pl.col("_cshi") - pl.col("_cslo")).alias(s),
        (pl.col("_cfhi") - pl.col("_cflo")).alias(f),
        pl.lit(None, dtype=pl.Datetime("us", "UTC")).alias(latest),
    )


def _window_expr(w: Window, scale: int, i: int, key_present: pl.Expr) -> pl.Expr:
    n_col, s_col, f_col, latest_col = (pl.col(c) for c in _span_columns(i))
    current = w.delay == 0
    n = n_col + 1 if current else n_col
    total = s_col + pl.col("amount_minor") if current else s_col
    match w.aggregate:
        case "count":
            value = n.cast(F64)
        case "amount_sum":
            value = divided(total.cast(F64), float(scale))
        case "amount_mean":
            value = pl.when(n > 0).then(total.cast(F64) / (n * scale).cast(F64)).otherwise(0.0)
        case "seconds_since_prev":
            gap = divided(
                (pl.col("timestamp") - latest_col).dt.total_microseconds().cast(F64),
                float(US_PER_SECOND),
            )
            value = gap.fill_null(float(w.seconds))
        case "fraud_count":
            value = f_col.cast(F64)
        case "fraud_share":
            value = pl.when(n_col > 0).then(f_col.cast(F64) / n_col.cast(F64)).otherwise(0.0)
        case _:
            raise ValueError(f"unknown aggregate {w.aggregate!r}")
    return pl.when(key_present).then(value).otherwise(None).alias(w.name)


def _row_expr(f: Amount | Hour | Weekend | Night | Category | Differs, scale: int) -> pl.Expr:
    ts = pl.col("timestamp")
    if isinstance(f, Amount):
        value = divided(pl.col("amount_minor").cast(F64), float(scale))
    elif isinstance(f, Hour):
        value = ts.dt.hour().cast(F64)
    elif isinstance(f, Weekend):
        value = (ts.dt.weekday() >= 6).cast(F64)
    elif isinstance(f, Night):
        value = (ts.dt.hour() < f.end_hour).cast(F64)
    elif isinstance(f, Category):
        value = category_code_expr(f.field)
    else:
        left, right = pl.col(f.left), pl.col(f.right)
        value = (
            pl.when(left.is_null() | right.is_null())
            .then(None)
            .otherwise((left != right).cast(F64))
        )
    return value.alias(f.name)


def with_optional_columns(frame: pl.DataFrame) -> pl.DataFrame:
    """The optional contract fields a frame lacks, as null columns (a five-field file)."""
    missing = [c for c in OPTIONAL_FIELDS if c not in frame.columns]
    return frame.with_columns(pl.lit(None, dtype=pl.String).alias(c) for c in missing)


def batch_features(frame: pl.DataFrame, decl: Declaration = DECLARATION) -> pl.DataFrame:
    """Add the declared feature columns to a checked contract frame (needs `is_fraud` when a
    feature counts frauds); row order is kept."""
    needs_labels = any(w.aggregate in ("fraud_count", "fraud_share") for w in decl.windows)
    if needs_labels and "is_fraud" not in frame.columns:
        raise ValueError("these features count frauds: the frame needs the is_fraud column")
    df = with_optional_columns(frame).with_row_index("_i")
    fraud = pl.col("is_fraud").cast(pl.Int64) if "is_fraud" in df.columns else pl.lit(0)
    df = df.with_columns(fraud.alias("_fraud"), pl.lit(1, dtype=pl.Int64).alias("_one"))

    rolling: list[pl.Expr] = []
    for i, span in enumerate(decl.spans):
        fields = list(decl.entity[span.entity].fields)
        if span.delay == 0:
            rolling += _rolling_span(span, fields, i)
        else:
            df = df.join(_shifted_span(df, span, fields, i), on="_i")
    df = df.with_columns(rolling).sort("_i")

    index = {span: i for i, span in enumerate(decl.spans)}
    scale = decl.amount_scale
    for f in decl.features:
        if isinstance(f, Window):
            present = pl.all_horizontal(
                pl.col(c).is_not_null() for c in decl.entity[f.entity].fields
            )
            i = index[Span(f.entity, f.seconds, f.delay)]
            df = df.with_columns(_window_expr(f, scale, i, present))
        elif isinstance(f, Ratio):
            num, den = pl.col(f.numerator), pl.col(f.denominator)
            df = df.with_columns(
                pl.when(den == 0.0).then(f.when_zero).otherwise(num / den).alias(f.name)
            )
        else:
            df = df.with_columns(_row_expr(f, scale))
    helpers = [c for c in df.columns if c.startswith("_")]
    return df.drop(helpers)


def feature_matrix(frame: pl.DataFrame, decl: Declaration = DECLARATION) -> np.ndarray:
    """The declared columns of a featured frame as a float64 matrix (missing values are NaN)."""
    return frame.select(decl.names).to_numpy().astype(np.float64, copy=False)
