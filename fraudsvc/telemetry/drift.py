"""Drift: recent scores and feature values against the training reference stored with the model.

The web process keeps the last FRAUDSVC_MONITOR_WINDOW new predictions (vector and score) in
memory and, every FRAUDSVC_MONITOR_INTERVAL_SECONDS, computes the population stability index of
each feature and of the score against the model's reference distributions, exported as
`fraudsvc_drift_psi{feature=...}` (`feature="score"` for the score). Each replica watches its
own traffic; with several replicas, dashboards take the max or the mean. A PSI above about 0.2
is the usual sign that the population moved enough to retrain.
"""

from __future__ import annotations

import asyncio
from collections import deque

import numpy as np
from loguru import logger

from fraudsvc.model.loader import ModelHolder
from fraudsvc.model.reference import psi
from fraudsvc.telemetry.metrics import WebMetrics, reset

MIN_WINDOW = 100  # fewer predictions say nothing reliable about a distribution


class DriftMonitor:
    def __init__(self, models: ModelHolder, metrics: WebMetrics, window: int, interval: float):
        self.models = models
        self.metrics = metrics
        self.interval = interval
        self.vectors: deque[list[float]] = deque(maxlen=window)
        self.scores: deque[float] = deque(maxlen=window)
        self.version: str | None = None

    def record(self, vector: list[float], score: float, version: str) -> None:
        if version != self.version:  # a new model has its own reference: start over
            self.vectors.clear()
            self.scores.clear()
            self.version = version
        self.vectors.append(vector)
        self.scores.append(score)

    def compute(self) -> dict[str, float]:
        bundle = self.models.current
        if bundle is None or len(self.scores) < MIN_WINDOW or bundle.version != self.version:
            return {}
        matrix = np.asarray(self.vectors, dtype=np.float64)
        values = {
            name: psi(bundle.meta.feature_reference[name], matrix[:, i])
            for i, name in enumerate(bundle.feature_names)
            if name in bundle.meta.feature_reference
        }
        values["score"] = psi(bundle.meta.score_reference, np.asarray(self.scores))
        return values

    def publish(self) -> None:
        values = self.compute()
        if not values:  # a new model, or too few predictions: no stale PSI of the old one
            reset(self.metrics.drift)
        for feature, value in values.items():
            self.metrics.drift.set({"feature": feature}, value)
        self.metrics.drift_window.set({}, len(self.scores))

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                self.publish()
            except Exception:  # never let the monitor die
                logger.exception("drift computation failed")
