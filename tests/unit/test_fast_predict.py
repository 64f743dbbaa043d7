"""The single-row fast path (fraudsvc.model.fast_predict) against its definition,
`Booster.predict(row, num_threads=1)`: the same floats bit for bit, for the score (the
probability, not the raw score) and for `pred_contrib`, on a real booster trained here with the
service's own parameters, features and early stopping, then saved and loaded as a bundle.
Vectors: drawn like real ones (NaN for missing values), and edge values in every column."""

from __future__ import annotations

import dataclasses
import gc
import math
import threading
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pytest
from loguru import logger

from fraudsvc import scoring
from fraudsvc.decision import Thresholds
from fraudsvc.features import DECLARATION
from fraudsvc.model import fast_predict
from fraudsvc.model.bundle import (
    BOOSTER_FILE,
    BUNDLE_FORMAT,
    EXTRA_DIR,
    BundleMeta,
    ModelBundle,
    ThresholdMeta,
    load_bundle,
    write_extra_files,
)
from fraudsvc.model.fast_predict import (
    PREDICT_CONTRIB,
    PREDICT_NORMAL,
    FastPredictError,
    RowPredictor,
    fast_paths,
)
from fraudsvc.model.reference import build_reference
from fraudsvc.training.fit import train_lightgbm

NAMES = list(DECLARATION.names)
WIDTH = len(NAMES)
CATEGORICAL = [NAMES.index(n) for n in DECLARATION.categorical]
EDGES = [
    0.0,
    -0.0,
    1e-36,  # below LightGBM's zero threshold (1e-35): read as zero
    -1e-36,
    1e-300,
    5e-324,
    -1.0,
    0.5,
    2.5,
    1e9,
    2.0**31,
    1e308,
    -1e308,
    math.inf,
    -math.inf,
    math.nan,
]


def synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows shaped like the service's vectors: counts, amounts, codes, and NaN (missing)."""
    rng = np.random.default_rng(seed)
    x = rng.lognormal(1.0, 1.5, size=(n, WIDTH))
    for j in CATEGORICAL:
        x[:, j] = rng.integers(0, 6, n)
    x[rng.random((n, WIDTH)) < 0.15] = np.nan
    filled = np.log1p(np.nan_to_num(x, nan=0.0))
    logit = (
        -2.5
        + filled[:, :6] @ np.array([0.8, -0.5, 0.4, 0.3, -0.6, 0.5])
        + 1.2 * (x[:, CATEGORICAL[2]] == 2)
        + 0.8 * np.isnan(x[:, 11])
        + 0.5 * np.sin(3 * filled[:, 12]) * filled[:, 13]
    )
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return x, y


def vectors(n: int, seed: int) -> list[list[float]]:
    """Realistic rows, then rows with one edge value per column, then all-edge rows."""
    x, _ = synthetic(n, seed)
    rows = [[float(v) for v in row] for row in x]
    base = rows[0]
    for j in range(WIDTH):
        for value in EDGES:
            rows.append([value if i == j else v for i, v in enumerate(base)])
    rows += [[value] * WIDTH for value in EDGES]
    return rows


def bits(values: Any) -> list[int]:
    """The exact bits of floats (tells -0.0 from 0.0, and compares NaN with itself)."""
    return np.asarray(values, dtype=np.float64).reshape(-1).view(np.uint64).tolist()


@pytest.fixture(scope="module")
def trained() -> lgb.Booster:
    """Early-stopped, as `fraudsvc train` does (its parameters and features)."""
    x, y = synthetic(6000, seed=1)
    xv, yv = synthetic(2000, seed=2)
    booster = train_lightgbm(
        x, y, xv, yv, NAMES, DECLARATION.categorical, seed=3, max_rounds=300, label="test"
    )
    assert booster.num_trees() > 20
    return booster


@pytest.fixture(scope="module")
def bundle_dir(trained: lgb.Booster, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The booster written as a model version's directory."""
    directory: Path = tmp_path_factory.mktemp("bundle")
    trained.save_model(str(directory / BOOSTER_FILE))
    background, _ = synthetic(200, seed=4)
    meta = BundleMeta(
        format=BUNDLE_FORMAT,
        feature_spec=DECLARATION.to_dict(),
        feature_hash=DECLARATION.hash,
        thresholds=ThresholdMeta(review=0.3, block=0.8, rule="test"),
        feature_reference={},
        score_reference=build_reference(np.linspace(0.0, 1.0, 50)),
        training={},
    )
    write_extra_files(directory / EXTRA_DIR, meta, background)
    return directory


@pytest.fixture(scope="module")
def bundle(bundle_dir: Path) -> ModelBundle:
    """Loaded as the service loads a model version."""
    loaded = load_bundle(bundle_dir)
    assert loaded.thresholds == Thresholds(review=0.3, block=0.8)
    return loaded


def plain(bundle: ModelBundle) -> ModelBundle:
    return dataclasses.replace(bundle, fast=None)


def test_a_loaded_bundle_has_both_fast_predictors(bundle: ModelBundle) -> None:
    assert bundle.fast is not None
    assert bundle.fast.score.size == 1
    assert bundle.fast.contrib.size == WIDTH + 1


def test_scores_are_booster_predicts_bit_for_bit(bundle: ModelBundle) -> None:
    rows = vectors(3000, seed=5)
    fast = [scoring.score(bundle, v) for v in rows]
    oracle = [float(bundle.booster.predict(np.array([v]), num_threads=1)[0]) for v in rows]
    assert bits(fast) == bits(oracle)
    assert bits(fast) == bits([scoring.score(plain(bundle), v) for v in rows])
    assert all(isinstance(s, float) for s in fast)


def test_the_score_is_the_probability_not_the_raw_score(bundle: ModelBundle) -> None:
    rows = vectors(50, seed=6)[:50]
    for v in rows:
        s = scoring.score(bundle, v)
        raw = float(bundle.booster.predict(np.array([v]), raw_score=True, num_threads=1)[0])
        assert 0.0 < s < 1.0
        assert s == pytest.approx(1 / (1 + math.exp(-raw)), rel=1e-12)
        assert s != raw


def test_contributions_are_pred_contrib_bit_for_bit(bundle: ModelBundle) -> None:
    rows = vectors(300, seed=7)
    for v in rows:
        fast = scoring.contributions(bundle, v)
        oracle = bundle.booster.predict(np.array([v]), num_threads=1, pred_contrib=True)
        assert fast.shape == (WIDTH + 1,)
        assert bits(fast) == bits(oracle)
        assert bits(fast) == bits(scoring.plain_contributions(bundle, v))


def test_reasons_are_those_of_the_plain_path(bundle: ModelBundle) -> None:
    for v in vectors(100, seed=8)[:100]:
        assert scoring.reasons(bundle, v) == scoring.reasons(plain(bundle), v)


def test_the_best_iteration_is_used_as_booster_predict_uses_it() -> None:
    """An early-stopped booster still holding its later trees: predict stops at the best, and
    so do the fast paths, whatever window other predictions on the booster use meanwhile."""
    x, y = synthetic(3000, seed=9)
    xv, yv = synthetic(1000, seed=10)
    params = {"objective": "binary", "learning_rate": 0.3, "verbose": -1, "num_threads": 1}
    booster = lgb.train(
        params,
        lgb.Dataset(x, y, feature_name=NAMES),
        num_boost_round=200,
        valid_sets=[lgb.Dataset(xv, yv)],
        callbacks=[lgb.early_stopping(5, verbose=False)],
        keep_training_booster=True,  # else lgb.train keeps only the trees up to the best
    )
    assert 0 < booster.best_iteration < booster.current_iteration()
    fast = fast_paths(booster)
    assert fast is not None
    rows = vectors(300, seed=11)
    oracle = [float(booster.predict(np.array([v]), num_threads=1)[0]) for v in rows]
    every_tree = [float(booster.predict(np.array([v]), num_iteration=-1)[0]) for v in rows]
    assert bits(oracle) != bits(every_tree)
    booster.predict(np.array(rows[:1]), num_iteration=3)  # sets the booster's window
    assert bits([fast.score.value(v) for v in rows]) == bits(oracle)
    for v in rows[:50]:
        contrib = booster.predict(np.array([v]), num_threads=1, pred_contrib=True)
        assert bits(fast.contrib.values(v)) == bits(contrib)


def test_a_vector_of_the_wrong_length_is_refused(bundle: ModelBundle) -> None:
    assert bundle.fast is not None
    with pytest.raises(ValueError, match="same size"):
        bundle.fast.score.value([1.0] * (WIDTH - 1))
    with pytest.raises(ValueError, match="same size"):
        bundle.fast.contrib.values([1.0] * (WIDTH + 1))


def test_the_handle_is_freed_when_closed_or_collected(trained: lgb.Booster) -> None:
    predictor = RowPredictor(trained, PREDICT_CONTRIB)
    predictor.close()
    with pytest.raises(FastPredictError, match="closed"):
        predictor.values([0.0] * WIDTH)
    predictor.close()  # twice is harmless

    collected = RowPredictor(trained, PREDICT_NORMAL)
    finalizer = collected._finalizer
    assert finalizer.alive
    del collected
    gc.collect()
    assert not finalizer.alive


def test_a_dropped_bundle_frees_its_handles(bundle_dir: Path) -> None:
    dropped = load_bundle(bundle_dir)
    assert dropped.fast is not None
    finalizers = [dropped.fast.score._finalizer, dropped.fast.contrib._finalizer]
    assert all(f.alive for f in finalizers)
    del dropped
    gc.collect()
    assert not any(f.alive for f in finalizers)


def test_a_predictor_keeps_its_booster_alive(trained: lgb.Booster) -> None:
    """The FastConfig points into the booster: dropping the booster first must be safe."""
    booster = lgb.Booster(model_str=trained.model_to_string())
    predictor = RowPredictor(booster, PREDICT_NORMAL)
    row = vectors(1, seed=12)[0]
    expected = float(booster.predict(np.array([row]), num_threads=1)[0])
    del booster
    gc.collect()
    assert bits([predictor.value(row)]) == bits([expected])


def test_threads_sharing_a_predictor_get_their_own_answers(bundle: ModelBundle) -> None:
    rows = vectors(400, seed=13)[:400]
    expected = bits([scoring.score(plain(bundle), v) for v in rows])
    results: dict[int, list[int]] = {}

    def run(k: int) -> None:
        results[k] = bits([scoring.score(bundle, v) for v in rows])

    threads = [threading.Thread(target=run, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(results[k] == expected for k in range(4))


def test_without_the_fast_functions_the_plain_path_is_used_and_said_once(
    trained: lgb.Booster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fast_predict, "available", lambda: False)
    monkeypatch.setattr(fast_predict, "_warned", False)
    messages: list[str] = []
    sink = logger.add(lambda m: messages.append(str(m)), level="WARNING")
    try:
        assert fast_paths(trained) is None
        assert fast_paths(trained) is None
    finally:
        logger.remove(sink)
    assert len(messages) == 1
    assert "Booster.predict" in messages[0]


def test_a_refused_init_falls_back(trained: lgb.Booster, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: RowPredictor, booster: lgb.Booster, predict_type: int) -> None:
        raise FastPredictError("refused")

    monkeypatch.setattr(RowPredictor, "__init__", refuse)
    monkeypatch.setattr(fast_predict, "_warned", True)
    assert fast_paths(trained) is None
