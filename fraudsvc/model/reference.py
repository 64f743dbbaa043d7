"""Training-time distributions stored with the model, and the population stability index.

The service compares recent scores and feature values with these references; a PSI above about
0.2 is the usual sign that the population has shifted enough to retrain.

- A numeric feature is binned by quantiles of the reference sample.
- A categorical feature (a channel, a merchant category code...) is compared by category share:
  its most frequent codes each have a bin, the rest share one.
- Missing values (NaN: no device on a card-present payment) have a bin of their own, so that a
  change in how often a field is sent counts as drift too.

References written before categories and missing values existed read with no categories and no
missing share, and behave as they did.
"""

from __future__ import annotations

import math
from typing import Literal

import msgspec
import numpy as np

BINS = 10
TOP_CATEGORIES = 20
EPSILON = 1e-4  # keeps empty bins from dividing by zero


class Reference(msgspec.Struct, frozen=True):
    """Bin edges (numeric) or categories, and the share of the reference sample in each bin;
    the last share is the missing values' (when `missing` is set)."""

    edges: list[float]
    proportions: list[float]
    kind: Literal["numeric", "categorical"] = "numeric"
    categories: list[float] = msgspec.field(default_factory=list)
    missing: bool = False
    """Whether `proportions` ends with the share of missing values."""


def build_reference(values: np.ndarray, categorical: bool = False) -> Reference:
    finite = values[np.isfinite(values)]
    missing = float(np.mean(~np.isfinite(values))) if values.size else 0.0
    if categorical:
        codes, counts = np.unique(finite, return_counts=True)
        top = codes[np.argsort(-counts, kind="stable")[:TOP_CATEGORIES]]
        categories = sorted(float(c) for c in top)
        shares = _category_shares(np.asarray(categories), finite) * (1.0 - missing)
        return Reference(
            edges=[],
            proportions=[*shares.tolist(), missing],
            kind="categorical",
            categories=categories,
            missing=True,
        )
    if finite.size == 0:
        return Reference(edges=[], proportions=[0.0, 1.0], missing=True)
    quantiles = np.quantile(finite, np.linspace(0, 1, BINS + 1)[1:-1])
    edges = np.unique(quantiles)
    shares = _shares(edges, finite) * (1.0 - missing)
    return Reference(edges=edges.tolist(), proportions=[*shares.tolist(), missing], missing=True)


def _shares(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    # bin i holds edges[i-1] < v <= edges[i]; the last bin is open above
    counts = np.bincount(np.searchsorted(edges, values, side="left"), minlength=edges.size + 1)
    return counts / max(1, values.size)


def _category_shares(categories: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Share of each category, then of all the others together."""
    index = np.searchsorted(categories, values)
    known = (index < categories.size) & (
        categories[np.minimum(index, categories.size - 1)] == values
    )
    counts = np.bincount(np.where(known, index, categories.size), minlength=categories.size + 1)
    return counts / max(1, values.size)


def psi(reference: Reference, values: np.ndarray) -> float:
    """Population stability index of `values` against the reference (0 = same distribution)."""
    finite = values[np.isfinite(values)]
    if reference.missing:
        missing = float(np.mean(~np.isfinite(values))) if values.size else 0.0
    elif finite.size == 0:
        return 0.0
    else:
        missing = 0.0
    if reference.kind == "categorical":
        shares = _category_shares(np.asarray(reference.categories, dtype=np.float64), finite)
    else:
        shares = _shares(np.asarray(reference.edges, dtype=np.float64), finite)
    actual = shares * (1.0 - missing)
    if reference.missing:
        actual = np.append(actual, missing)
    expected = np.asarray(reference.proportions, dtype=np.float64)
    actual = np.clip(actual, EPSILON, None)
    expected = np.clip(expected, EPSILON, None)
    value = float(np.sum((actual - expected) * np.log(actual / expected)))
    return value if math.isfinite(value) else 0.0
