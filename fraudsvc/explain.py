"""LIME explanations of one stored feature vector, computed in a process-pool worker.

`LimeExplainer` explains a vector with one set of LIME options (`LimeOptions`, from the
FRAUDSVC_LIME_* settings); `explain_vector` is the process-pool entry point, which builds
explainers from the model version's background sample and keeps them in an LRU cache.

What an explanation says, and why it can be trusted or not:

- The target is the model's log-odds (LightGBM's raw score, the scale of `pred_contrib`) with
  LIME in regression mode, or the fraud probability with LIME in classification mode. The
  weights, the intercept and the local prediction are on that scale, and the model's own output
  on that scale is stored beside them, so `local_prediction` can be compared with it.
- Without a discretizer, a continuous feature's weight is the change of the target per one
  standard deviation of the feature (in the background sample, stored as the weight's `step`)
  near the transaction, and its condition is the value itself; with a discretizer, the weight is
  that of the feature lying in the transaction's bin. A categorical feature's weight is that of
  having the transaction's value rather than one drawn from the background's frequencies.
- `local_fit_r2` is LIME's weighted R² of its local linear model; `stability` is the mean
  Jaccard index of the top five features against `stability_seeds` more explanations with
  other seeds at the same settings (1.0: every seed shows the same five).

Reproducible: LIME's sampling, discretizer and regression share one RandomState, re-seeded
before every explanation, so the same vector, seed and options give the same explanation.

Missing values (NaN): a feature missing in the explained vector is held missing in every
perturbed sample, so the model sees it as it saw the transaction, and is left out of the local
model (it did not vary; the explanation lists it in `held_missing`). NaN cells of the background
sample are filled, for LIME's sampling statistics only, with values drawn from the column's
observed values (LIME's scaler, quantiles and frequencies break on NaN).
"""

from __future__ import annotations

import math
import time
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from fraudsvc.explain_options import LimeOptions
from fraudsvc.model.bundle import load_bundle


class Predictor(Protocol):
    """What LIME needs of the model: LightGBM's Booster.predict."""

    def predict(
        self, data: np.ndarray, *, raw_score: bool = ..., num_threads: int = ...
    ) -> Any: ...


TOP = 5
"""Stability compares the top TOP features (by absolute weight) across seeds."""
CLASS_NAMES = ["genuine", "fraud"]
MAX_PATTERNS = 32
"""LIME explainers kept per model and options, one per pattern of missing features."""


def warm_up() -> None:
    """Process-pool initializer: LIME's import alone takes about two seconds; and one BLAS
    thread per process, since OpenBLAS would start one per core and spin them without making an
    explanation faster (56 ms of CPU per explanation against 27 ms, measured by make bench).
    The worker also sets OPENBLAS_NUM_THREADS=1 for the processes it spawns."""
    import lime.lime_tabular  # noqa: F401
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)


def fill_missing(background: np.ndarray, seed: int = 0) -> np.ndarray:
    """The background with each NaN cell replaced by a value drawn from its column's observed
    values (a column with none becomes 0): LIME's sampling statistics need finite data."""
    filled = np.array(background, dtype=np.float64, copy=True)
    rng = np.random.default_rng(seed)
    for j in range(filled.shape[1]):
        missing = np.isnan(filled[:, j])
        if missing.any():
            observed = filled[~missing, j]
            filled[missing, j] = rng.choice(observed, missing.sum()) if observed.size else 0.0
    return filled


def top_features(weights: list[dict[str, Any]], k: int = TOP) -> frozenset[str]:
    ranked = sorted(weights, key=lambda w: -abs(float(w["weight"])))
    return frozenset(str(w["feature"]) for w in ranked[:k])


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    union = a | b
    return len(a & b) / len(union) if union else 1.0


def _format(value: float) -> str:
    return f"{value:.6g}"


class LimeExplainer:
    """LIME for one model with one set of options; one LIME explainer per pattern of missing
    features (the features perturbed differ), built on first use."""

    def __init__(
        self,
        booster: Predictor,
        background: np.ndarray,
        names: list[str],
        categorical: list[str],
        options: LimeOptions,
        review_threshold: float | None = None,
    ) -> None:
        self.booster = booster
        self.names = names
        self.options = options
        self.categorical = {names.index(c) for c in categorical if c in names}
        self.background = fill_missing(background)
        self.labels: np.ndarray | None = None
        if options.discretizer == "entropy":
            # LIME's entropy discretizer needs labels: the background has none, so the bins
            # separate what the model itself flags (score at or above the review threshold)
            if review_threshold is None:
                raise ValueError("the entropy discretizer needs the model's review threshold")
            scores = booster.predict(self.background, num_threads=1)
            self.labels = (np.asarray(scores) >= review_threshold).astype(int)
        self._explainers: dict[tuple[int, ...], Any] = {}

    def _lime(self, kept: tuple[int, ...]) -> Any:
        explainer = self._explainers.get(kept)
        if explainer is None:
            if len(self._explainers) >= MAX_PATTERNS:  # the oldest pattern goes
                del self._explainers[next(iter(self._explainers))]
            from lime.lime_tabular import LimeTabularExplainer

            o = self.options
            explainer = LimeTabularExplainer(
                training_data=self.background[:, kept],
                training_labels=self.labels,
                feature_names=[self.names[j] for j in kept],
                categorical_features=[i for i, j in enumerate(kept) if j in self.categorical],
                class_names=CLASS_NAMES,
                mode="regression" if o.target == "log_odds" else "classification",
                discretize_continuous=o.discretizer != "none",
                discretizer="quartile" if o.discretizer == "none" else o.discretizer,
                sample_around_instance=o.sample_around_instance,
                kernel_width=o.kernel_width_factor * math.sqrt(len(kept)),
                random_state=0,
            )
            self._explainers[kept] = explainer
        return explainer

    def explain(self, vector: list[float], seed: int) -> dict[str, Any]:
        """Plain data (it crosses a process boundary): the weights with each feature's value,
        condition and step, the local model's prediction, intercept and fit, the model's score
        and output on the target scale, the stability across seeds, and the time split between
        the model's predictions and LIME's own work."""
        o = self.options
        row = np.asarray(vector, dtype=np.float64)
        missing = np.isnan(row)
        kept = tuple(int(j) for j in np.flatnonzero(~missing))
        if not kept:
            raise ValueError("every feature of the vector is missing: nothing to explain")
        explainer = self._lime(kept)
        timer = {"predict": 0.0}

        def predict_fn(rows: np.ndarray) -> np.ndarray:
            started = time.perf_counter()
            full = np.tile(row, (rows.shape[0], 1))  # missing features stay missing
            full[:, kept] = rows
            raw = o.target == "log_odds"
            out = np.asarray(self.booster.predict(full, raw_score=raw, num_threads=1), np.float64)
            timer["predict"] += time.perf_counter() - started
            return out if raw else np.column_stack([1.0 - out, out])

        def run(run_seed: int) -> dict[str, Any]:
            return self._run(explainer, row[list(kept)], kept, predict_fn, run_seed)

        started = time.perf_counter()
        main = run(seed)
        shown = top_features(main["weights"])
        agreement = [
            jaccard(shown, top_features(run((seed + i) % 2**32)["weights"]))
            for i in range(1, o.stability_seeds + 1)
        ]
        seconds = time.perf_counter() - started
        probability = float(self.booster.predict(row.reshape(1, -1), num_threads=1)[0])
        raw_score = float(
            self.booster.predict(row.reshape(1, -1), raw_score=True, num_threads=1)[0]
        )
        return main | {
            "target": o.target,
            "score": probability,
            "model_output": raw_score if o.target == "log_odds" else probability,
            "held_missing": [self.names[j] for j in np.flatnonzero(missing)],
            "stability": float(np.mean(agreement)) if agreement else None,
            "stability_seeds": o.stability_seeds,
            "seconds": seconds,
            "predict_seconds": timer["predict"],
        }

    def _run(
        self,
        explainer: Any,
        row: np.ndarray,
        kept: tuple[int, ...],
        predict_fn: Any,
        seed: int,
    ) -> dict[str, Any]:
        explainer.random_state.seed(seed)
        explanation = explainer.explain_instance(
            row,
            predict_fn,
            labels=(1,),
            num_features=self.options.num_features,
            num_samples=self.options.num_samples,
        )
        weights = []  # as_list follows local_exp's order
        for (index, weight), (condition, _) in zip(
            explanation.local_exp[1], explanation.as_list(label=1), strict=True
        ):
            feature = kept[index]
            value = float(row[index])
            weights.append(self._weight(explainer, index, feature, value, condition, weight))
        return {
            "weights": weights,
            "local_prediction": float(np.ravel(explanation.local_pred)[0]),
            "intercept": float(explanation.intercept[1]),
            "local_fit_r2": float(explanation.score),
        }

    def _weight(
        self, explainer: Any, index: int, feature: int, value: float, condition: str, weight: float
    ) -> dict[str, Any]:
        name = self.names[feature]
        step: float | None = None
        if feature in self.categorical:
            condition = f"{name} = {_format(value)}"
        elif explainer.discretizer is None:
            condition = f"{name} = {_format(value)}"
            step = float(explainer.scaler.scale_[index])
        return {
            "feature": name,
            "value": value,
            "condition": condition,
            "weight": float(weight),
            "step": step,
        }


@lru_cache(maxsize=8)
def _explainer(model_dir: str, options: LimeOptions) -> LimeExplainer:
    bundle = load_bundle(Path(model_dir))
    return LimeExplainer(
        bundle.booster,
        bundle.background,
        bundle.feature_names,
        list(bundle.declaration.categorical),
        options,
        review_threshold=bundle.meta.thresholds.review,
    )


def explain_vector(
    model_dir: str, vector: list[float], options: LimeOptions, seed: int
) -> dict[str, Any]:
    """The process pool's entry point: explain a stored vector with the model version in
    `model_dir` (explainers cached per model and options in each process)."""
    return _explainer(model_dir, options).explain(vector, seed)
