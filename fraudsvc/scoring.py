"""Score one feature vector with the served booster; reasons from LightGBM's own contributions.

`pred_contrib` gives each feature's additive contribution to the log-odds of the score (SHAP
values for trees). It costs about 1 ms per row here against 0.02 ms for the score alone, so the
request path asks for it only for review and block decisions or when the caller wants it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fraudsvc.model.bundle import ModelBundle

TOP_REASONS = 5


@dataclass(frozen=True)
class Reason:
    feature: str
    value: float | None
    """The feature's value as LightGBM saw it; None when missing (an absent optional field)."""
    contribution: float
    """Contribution to the log-odds; positive pushes towards fraud."""


def score(bundle: ModelBundle, vector: list[float]) -> float:
    row = np.asarray([vector], dtype=np.float64)
    return float(bundle.booster.predict(row, num_threads=1)[0])


def reasons(bundle: ModelBundle, vector: list[float], top: int = TOP_REASONS) -> list[Reason]:
    """The features that moved this score most, largest absolute contribution first."""
    row = np.asarray([vector], dtype=np.float64)
    contributions = np.asarray(bundle.booster.predict(row, num_threads=1, pred_contrib=True))[0]
    per_feature = contributions[:-1]  # the last column is the expected value (bias)
    order = np.argsort(-np.abs(per_feature), kind="stable")[:top]
    names = bundle.feature_names
    return [
        Reason(
            feature=names[i],
            value=None if math.isnan(vector[i]) else float(vector[i]),
            contribution=float(per_feature[i]),
        )
        for i in order
    ]
