"""Score one feature vector with the served booster; reasons from LightGBM's own contributions.

`pred_contrib` gives each feature's additive contribution to the log-odds of the score (SHAP
values for trees). It costs about 1.1 ms per row here against 0.011 ms for the score alone
(bench model, 144 trees: `python -m tests.bench.predict_row`), so the request path asks for it
only for review and block decisions or when the caller wants it.

Both go through the bundle's single-row predictors (fraudsvc.model.fast_predict) when it has
them: the score then costs about 10 µs instead of 70 µs, and contributions save the same 60 µs
of `Booster.predict`'s per-call setup. `plain_score` and `plain_contributions` are the
definitions, kept for bundles without them and as the tests' oracle; the values are equal bit
for bit.
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


def plain_score(bundle: ModelBundle, vector: list[float]) -> float:
    """The model's fraud probability for one vector, by `Booster.predict` (the definition)."""
    row = np.asarray([vector], dtype=np.float64)
    return float(bundle.booster.predict(row, num_threads=1)[0])


def plain_contributions(bundle: ModelBundle, vector: list[float]) -> np.ndarray:
    """Each feature's contribution to the log-odds, then the expected value (the definition)."""
    row = np.asarray([vector], dtype=np.float64)
    out = bundle.booster.predict(row, num_threads=1, pred_contrib=True)
    return np.asarray(out, dtype=np.float64).reshape(-1)  # one row: (1, features + 1)


def score(bundle: ModelBundle, vector: list[float]) -> float:
    fast = bundle.fast
    if fast is None:
        return plain_score(bundle, vector)
    return fast.score.value(vector)


def contributions(bundle: ModelBundle, vector: list[float]) -> np.ndarray:
    fast = bundle.fast
    if fast is None:
        return plain_contributions(bundle, vector)
    return fast.contrib.values(vector)


def reasons(bundle: ModelBundle, vector: list[float], top: int = TOP_REASONS) -> list[Reason]:
    """The features that moved this score most, largest absolute contribution first."""
    per_feature = contributions(bundle, vector)[:-1]  # the last one is the expected value
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
