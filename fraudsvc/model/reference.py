"""Training-time distributions stored with the model, and the population stability index.

The service compares recent scores and feature values with these references; a PSI above about
0.2 is the usual sign that the population has shifted enough to retrain.
"""

from __future__ import annotations

import math

import msgspec
import numpy as np

BINS = 10
EPSILON = 1e-4  # keeps empty bins from dividing by zero


class Reference(msgspec.Struct, frozen=True):
    """Bin edges from quantiles of the reference sample and the share of it in each bin."""

    edges: list[float]
    proportions: list[float]


def build_reference(values: np.ndarray, bins: int = BINS) -> Reference:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return Reference(edges=[], proportions=[1.0])
    quantiles = np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1])
    edges = np.unique(quantiles)
    return Reference(edges=edges.tolist(), proportions=_shares(edges, finite).tolist())


def _shares(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    # bin i holds edges[i-1] < v <= edges[i]; the last bin is open above
    counts = np.bincount(np.searchsorted(edges, values, side="left"), minlength=edges.size + 1)
    return counts / max(1, values.size)


def psi(reference: Reference, values: np.ndarray) -> float:
    """Population stability index of `values` against the reference (0 = same distribution)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0
    actual = _shares(np.asarray(reference.edges, dtype=np.float64), finite)
    expected = np.asarray(reference.proportions, dtype=np.float64)
    actual = np.clip(actual, EPSILON, None)
    expected = np.clip(expected, EPSILON, None)
    value = float(np.sum((actual - expected) * np.log(actual / expected)))
    return value if math.isfinite(value) else 0.0
