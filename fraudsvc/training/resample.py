"""Optional SMOTE oversampling of the fit rows (never validation or test rows)."""

from __future__ import annotations

from typing import Literal

import numpy as np
from imblearn.over_sampling import SMOTE

Resampling = Literal["smote", "none"]
SMOTE_RATIO = 0.1
"""After SMOTE, frauds number this share of the genuine rows."""


def resample(
    x: np.ndarray, y: np.ndarray, method: Resampling, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    if method == "none":
        return x, y
    minority = int(y.sum())
    if minority < 2:
        raise ValueError("SMOTE needs at least two fraud rows in the fit period")
    if minority / max(1, y.size - minority) >= SMOTE_RATIO:
        return x, y
    smote = SMOTE(
        sampling_strategy=SMOTE_RATIO, k_neighbors=min(5, minority - 1), random_state=seed
    )
    x_res, y_res = smote.fit_resample(x, y)
    return np.asarray(x_res, dtype=np.float64), np.asarray(y_res)
