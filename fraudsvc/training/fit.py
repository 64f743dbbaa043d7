"""Model fitting: LightGBM (native booster, early stopping on validation) and the baseline."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import lightgbm as lgb
import numpy as np
from loguru import logger
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

EARLY_STOPPING_ROUNDS = 50


def lightgbm_params(seed: int) -> dict[str, Any]:
    return {
        "objective": "binary",
        "metric": "average_precision",
        "learning_rate": 0.05,
        "num_leaves": 31,
        "min_data_in_leaf": 100,
        "feature_fraction": 0.8,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "lambda_l2": 1.0,
        "seed": seed,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": os.cpu_count() or 1,
        "verbose": -1,
    }


def train_lightgbm(
    x_fit: np.ndarray,
    y_fit: np.ndarray,
    x_valid: np.ndarray,
    y_valid: np.ndarray,
    names: Sequence[str],
    categorical: Sequence[str],
    seed: int,
    max_rounds: int,
    label: str,
) -> lgb.Booster:
    """Train with early stopping on validation average precision; keeps the best iteration.
    `categorical` features (integer codes) are split as categories; NaN is missing."""
    fit_set = lgb.Dataset(
        x_fit,
        y_fit,
        feature_name=list(names),
        categorical_feature=list(categorical) or "auto",
        free_raw_data=True,
    )
    valid_set = lgb.Dataset(x_valid, y_valid, reference=fit_set)

    def report(env: lgb.callback.CallbackEnv) -> None:
        if (env.iteration + 1) % 100 == 0:
            value = env.evaluation_result_list[0][2] if env.evaluation_result_list else float("nan")
            logger.info(
                "  lightgbm ({}): round {} validation AP {:.4f}", label, env.iteration + 1, value
            )

    booster = lgb.train(
        lightgbm_params(seed),
        fit_set,
        num_boost_round=max_rounds,
        valid_sets=[valid_set],
        valid_names=["valid"],
        callbacks=[lgb.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False), report],
    )
    # keep only the trees up to the best iteration, so that the saved model is what was validated
    best = booster.best_iteration or booster.current_iteration()
    return lgb.Booster(model_str=booster.model_to_string(num_iteration=best))


def train_baseline(x_fit: np.ndarray, y_fit: np.ndarray) -> Pipeline:
    """Logistic regression on standardised features: the yardstick LightGBM must beat. Missing
    values (NaN: no device, no country...) are imputed with the median plus an indicator."""
    model = make_pipeline(
        SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
        StandardScaler(),
        LogisticRegression(max_iter=2000),
    )
    model.fit(x_fit, y_fit)
    return model


def predict(booster: lgb.Booster, x: np.ndarray) -> np.ndarray:
    return np.asarray(booster.predict(x, num_threads=os.cpu_count() or 1), dtype=np.float64)
