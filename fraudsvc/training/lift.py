"""What the features beyond the Handbook's baseline add: the same pipeline on the same split with
the baseline declaration alone.

The model trained on the baseline features (same resampling, seed and rounds as the model being
trained) is scored on the same test rows; its quality and the difference are reported in the
summary and logged to MLflow. When the declaration being trained is the baseline, there is
nothing to compare and nothing is trained.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from fraudsvc.features import Declaration, batch_features, feature_matrix
from fraudsvc.features.default import BASELINE
from fraudsvc.training.fit import predict, train_lightgbm
from fraudsvc.training.metrics import Quality, quality
from fraudsvc.training.resample import Resampling, resample
from fraudsvc.training.split import SplitPlan


@dataclass(frozen=True)
class Lift:
    baseline_features: Quality
    scores: np.ndarray

    def of(self, model: Quality) -> dict[str, float]:
        """The model's gain over the baseline features, per metric (positive: better)."""
        b = self.baseline_features
        return {
            "roc_auc": model.roc_auc - b.roc_auc,
            "average_precision": model.average_precision - b.average_precision,
            "card_precision_at_100": model.card_precision_at_100 - b.card_precision_at_100,
        }


def baseline_columns(
    decl: Declaration, featured: pl.DataFrame, frame: pl.DataFrame
) -> pl.DataFrame:
    """The baseline features of every row: taken from `featured` when the declaration holds them
    with the same definitions, else computed."""
    if all(f in decl.features for f in BASELINE.features):
        return featured
    return batch_features(frame, BASELINE)


def baseline_lift(
    decl: Declaration,
    frame: pl.DataFrame,
    featured: pl.DataFrame,
    plan: SplitPlan,
    method: Resampling,
    seed: int,
    max_rounds: int,
) -> Lift | None:
    if decl.hash == BASELINE.hash:
        return None
    rows = baseline_columns(decl, featured, frame)
    fit, valid, test = (rows.filter(p.mask()) for p in (plan.fit, plan.valid, plan.test))
    x_fit, x_valid, x_test = (feature_matrix(f, BASELINE) for f in (fit, valid, test))
    y_fit, y_valid = (f["is_fraud"].to_numpy().astype(np.int64) for f in (fit, valid))
    categorical = [BASELINE.names.index(n) for n in BASELINE.categorical]
    x_r, y_r = resample(x_fit, y_fit, method, seed, categorical)
    booster = train_lightgbm(
        x_r, y_r, x_valid, y_valid, BASELINE.names, (), seed, max_rounds, "baseline features"
    )
    scores = predict(booster, x_test)
    return Lift(quality(test, scores), scores)
