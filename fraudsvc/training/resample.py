"""Optional SMOTE oversampling of the fit rows (never validation or test rows).

SMOTE interpolates between a fraud and its fraud neighbours, which means nothing for a category
code or a missing value. Categorical columns, and columns holding missing values (NaN: a window
over a device the transaction does not have), are resampled with SMOTE-NC instead: a synthetic
row takes those columns' most frequent value among its neighbours, so it only ever holds values
that real rows hold, NaN included.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from imblearn.over_sampling import SMOTE, SMOTENC

Resampling = Literal["smote", "none"]
SMOTE_RATIO = 0.1
"""After SMOTE, frauds number this share of the genuine rows."""


MISSING = -1.0
"""Stands for NaN during resampling: below every feature's domain (amounts, counts, codes, hours
and shares are all >= 0)."""


def resample(
    x: np.ndarray,
    y: np.ndarray,
    method: Resampling,
    seed: int,
    categorical: Sequence[int] = (),
) -> tuple[np.ndarray, np.ndarray]:
    if method == "none":
        return x, y
    minority = int(y.sum())
    if minority < 2:
        raise ValueError("SMOTE needs at least two fraud rows in the fit period")
    if minority / max(1, y.size - minority) >= SMOTE_RATIO:
        return x, y
    k = min(5, minority - 1)
    missing = np.isnan(x)
    discrete = sorted(set(categorical) | set(np.flatnonzero(missing.any(axis=0)).tolist()))
    if not discrete:
        smote = SMOTE(sampling_strategy=SMOTE_RATIO, k_neighbors=k, random_state=seed)
        x_res, y_res = smote.fit_resample(x, y)
        return np.asarray(x_res, dtype=np.float64), np.asarray(y_res)
    filled = np.where(missing, MISSING, x)
    nc = SMOTENC(
        categorical_features=discrete,
        sampling_strategy=SMOTE_RATIO,
        k_neighbors=k,
        random_state=seed,
    )
    x_res, y_res = nc.fit_resample(filled, y)
    out = np.asarray(x_res, dtype=np.float64)
    columns = out[:, discrete]
    columns[columns == MISSING] = np.nan
    out[:, discrete] = columns
    return out, np.asarray(y_res)
