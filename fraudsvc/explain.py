"""LIME explanations of one stored feature vector, computed in a process-pool worker.

The explainer is built from the background sample stored with the model version that scored
the transaction, so the explanation describes that exact model. LIME's sampling, discretiser and
local regression share one RandomState; it is re-seeded before every explanation, so the same
vector with the same seed gives the same explanation.

Each pool process keeps the last few loaded models (booster + explainer) in an LRU cache, keyed
by the model's folder: a process-pool function has no context object to hold them, and loading
them again for every explanation would cost more than the explanation.
"""

from __future__ import annotations

import time
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from fraudsvc.model.bundle import load_bundle

CLASS_NAMES = ["genuine", "fraud"]


def warm_up() -> None:
    """Process-pool initializer: LIME's import alone takes about two seconds; and one BLAS
    thread per process, since OpenBLAS would start one per core and spin them without making an
    explanation faster (56 ms of CPU per explanation against 27 ms, measured by make bench).
    The worker also sets OPENBLAS_NUM_THREADS=1 for the processes it spawns."""
    import lime.lime_tabular  # noqa: F401
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)


@lru_cache(maxsize=4)
def _explainer(model_dir: str) -> tuple[Any, Any, list[str]]:
    from lime.lime_tabular import LimeTabularExplainer

    bundle = load_bundle(Path(model_dir))
    names = bundle.feature_names
    categorical = bundle.declaration.categorical
    explainer = LimeTabularExplainer(
        training_data=bundle.background,
        feature_names=names,
        categorical_features=[names.index(c) for c in categorical if c in names],
        class_names=CLASS_NAMES,
        mode="classification",
        discretize_continuous=True,
        discretizer="quartile",
        random_state=0,
    )
    return bundle.booster, explainer, names


def explain_vector(
    model_dir: str, vector: list[float], num_samples: int, num_features: int, seed: int
) -> dict[str, Any]:
    """Plain data (it crosses a process boundary): the weights with each feature's value and
    LIME's condition text, the local model's prediction, intercept and fit, the model's score,
    and how the time split between the model's predictions and LIME's own work."""
    booster, explainer, names = _explainer(model_dir)
    predict_seconds = 0.0

    def predict_fn(rows: np.ndarray) -> np.ndarray:
        nonlocal predict_seconds
        started = time.perf_counter()
        p = np.asarray(booster.predict(rows, num_threads=1), dtype=np.float64)
        predict_seconds += time.perf_counter() - started
        return np.column_stack([1.0 - p, p])

    row = np.asarray(vector, dtype=np.float64)
    explainer.random_state.seed(seed)
    started = time.perf_counter()
    explanation = explainer.explain_instance(
        row, predict_fn, labels=(1,), num_features=num_features, num_samples=num_samples
    )
    total = time.perf_counter() - started
    conditions = explanation.as_list(label=1)
    local = explanation.local_exp[1]
    weights = [
        {
            "feature": names[index],
            "value": float(row[index]),
            "condition": condition,
            "weight": float(weight),
        }
        for (index, weight), (condition, _) in zip(local, conditions, strict=True)
    ]
    return {
        "weights": weights,
        "local_prediction": float(np.ravel(explanation.local_pred)[0]),
        "intercept": float(explanation.intercept[1]),
        "local_fit_r2": float(explanation.score),
        "score": float(booster.predict(row.reshape(1, -1), num_threads=1)[0]),
        "seconds": total,
        "predict_seconds": predict_seconds,
    }
