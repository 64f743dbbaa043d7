"""Quality metrics on a scored period: ROC AUC, average precision, card precision@k per day.

Card precision@k per day follows the fraud-detection handbook's definition: each day, rank the
customers by their highest score that day, take the top k, and count the share of them that had
at least one fraudulent transaction that day; average over the days. `cp_max` is the best value
any model could reach (it is low when few cards are compromised per day).
"""

from __future__ import annotations

import math

import msgspec
import numpy as np
import polars as pl
from sklearn.metrics import average_precision_score, roc_auc_score

CARD_K = 100


class Quality(msgspec.Struct, frozen=True):
    rows: int
    frauds: int
    roc_auc: float
    average_precision: float
    card_precision_at_100: float
    card_precision_at_100_max: float


def card_precision(frame: pl.DataFrame, scores: np.ndarray, k: int = CARD_K) -> tuple[float, float]:
    daily = (
        frame.select(
            pl.col("timestamp").dt.date().alias("day"),
            "customer_id",
            pl.col("is_fraud").cast(pl.Int64),
            pl.Series("score", scores),
        )
        .group_by("day", "customer_id")
        .agg(pl.col("score").max(), pl.col("is_fraud").max())
    )
    top = (
        daily.sort("score", descending=True)
        .group_by("day", maintain_order=True)
        .head(k)
        .group_by("day")
        .agg((pl.col("is_fraud").sum() / k).alias("cp"))
    )
    best = daily.group_by("day").agg(
        (pl.min_horizontal(pl.col("is_fraud").sum(), pl.lit(k)) / k).alias("cp_max")
    )
    if top.height == 0:
        return math.nan, math.nan
    return float(top["cp"].mean()), float(best["cp_max"].mean())  # type: ignore[arg-type]


def quality(frame: pl.DataFrame, scores: np.ndarray) -> Quality:
    y = frame["is_fraud"].to_numpy()
    both = 0 < int(y.sum()) < y.size
    cp, cp_max = card_precision(frame, scores)
    return Quality(
        rows=int(y.size),
        frauds=int(y.sum()),
        roc_auc=float(roc_auc_score(y, scores)) if both else math.nan,
        average_precision=float(average_precision_score(y, scores)) if both else math.nan,
        card_precision_at_100=cp,
        card_precision_at_100_max=cp_max,
    )
