"""LIME explanations (fraudsvc.explain) of a small real LightGBM model trained here on a
synthetic frame with a NaN-bearing column (a device's age, unknown for a third of the rows)
and an integer-coded categorical column (a channel): reproducibility, what the numbers mean
on each target, the stability figure, missing values and categorical features."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import lightgbm as lgb
import numpy as np
import pytest

from fraudsvc.explain import LimeExplainer, fill_missing, jaccard, top_features
from fraudsvc.explain_options import DISCRETIZERS, LimeOptions

NAMES = ["amount", "device_age", "channel", "velocity", "noise_a", "noise_b", "noise_c", "hour"]
AMOUNT, DEVICE, CHANNEL = 0, 1, 2
FAST = LimeOptions(num_samples=400, num_features=7, stability_seeds=0)


def synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    amount = rng.lognormal(3.5, 1.0, n)
    device = rng.exponential(200.0, n)
    device[rng.random(n) < 0.3] = np.nan  # no device id: its age is unknown
    channel = rng.integers(0, 4, n).astype(np.float64)
    velocity = rng.poisson(2.0, n).astype(np.float64)
    noise = rng.normal(size=(n, 3))
    hour = rng.integers(0, 24, n).astype(np.float64)
    logit = (
        -4.0
        + 0.9 * np.log(amount)
        - 0.004 * np.nan_to_num(device, nan=0.0)
        + 1.5 * np.isnan(device)
        + 1.8 * (channel == 2)
        + 0.4 * velocity
    )
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    x = np.column_stack([amount, device, channel, velocity, noise, hour])
    return x, y


@pytest.fixture(scope="module")
def model() -> tuple[lgb.Booster, np.ndarray, np.ndarray]:
    x, y = synthetic(4000, seed=1)
    params = {
        "objective": "binary",
        "num_leaves": 15,
        "learning_rate": 0.1,
        "num_threads": 1,
        "deterministic": True,
        "seed": 3,
        "verbose": -1,
    }
    data = lgb.Dataset(x, y, feature_name=NAMES, categorical_feature=[CHANNEL])
    booster = lgb.train(params, data, num_boost_round=60)
    return booster, x[:600], x[600:700]  # background sample, vectors to explain


def explainer(model: Any, **options: Any) -> LimeExplainer:
    booster, background, _ = model
    return LimeExplainer(
        booster,
        background,
        NAMES,
        ["channel"],
        dataclasses.replace(FAST, **options),
        review_threshold=0.5,
    )


def with_device(rows: np.ndarray, missing: bool) -> list[float]:
    row = next(r for r in rows if np.isnan(r[DEVICE]) == missing)
    return [float(v) for v in row]


def test_the_same_vector_and_seed_give_the_same_explanation(model: Any) -> None:
    vector = with_device(model[2], missing=False)
    one = explainer(model, stability_seeds=2).explain(vector, seed=42)
    two = explainer(model, stability_seeds=2).explain(vector, seed=42)  # a fresh process
    again = explainer(model, stability_seeds=2)
    again.explain(vector, seed=7)  # the explainer's state must not leak into the next one
    three = again.explain(vector, seed=42)
    other = explainer(model, stability_seeds=2).explain(vector, seed=7)
    keys = ("weights", "local_prediction", "intercept", "local_fit_r2", "stability")
    for key in keys:
        assert one[key] == two[key] == three[key]
    assert one["weights"] != other["weights"]


def test_log_odds_explanations_are_on_the_models_raw_score(model: Any) -> None:
    booster = model[0]
    vector = with_device(model[2], missing=False)
    result = explainer(model, target="log_odds").explain(vector, seed=1)
    p = booster.predict(np.array([vector]), num_threads=1)[0]
    assert result["target"] == "log_odds"
    assert result["score"] == pytest.approx(p, abs=1e-15)
    assert result["model_output"] == pytest.approx(math.log(p / (1 - p)), abs=1e-9)
    # the local model approximates the model's log-odds at the transaction, not its probability
    local = result["local_prediction"]
    assert abs(local - result["model_output"]) < abs(local - p)
    assert result["model_output"] < 0  # this transaction's probability is below 0.5


def test_probability_explanations_are_on_the_probability(model: Any) -> None:
    vector = with_device(model[2], missing=False)
    result = explainer(model, target="probability").explain(vector, seed=1)
    assert result["target"] == "probability"
    assert result["model_output"] == result["score"]
    local, p = result["local_prediction"], result["score"]
    assert abs(local - p) < abs(local - math.log(p / (1 - p)))


def test_continuous_weights_read_the_value_and_are_per_standard_deviation(model: Any) -> None:
    background = model[1]
    vector = with_device(model[2], missing=False)
    result = explainer(model, discretizer="none", num_features=8).explain(vector, seed=1)
    by_name = {w["feature"]: w for w in result["weights"]}
    amount = by_name["amount"]
    assert amount["condition"] == f"amount = {vector[AMOUNT]:.6g}"
    assert amount["value"] == vector[AMOUNT]
    assert amount["step"] == pytest.approx(np.std(background[:, AMOUNT]))
    assert by_name["channel"]["condition"] == f"channel = {int(vector[CHANNEL])}"
    assert by_name["channel"]["step"] is None


def test_a_discretizer_names_the_bin_of_the_value(model: Any) -> None:
    vector = with_device(model[2], missing=False)
    result = explainer(model, discretizer="quartile", num_features=8).explain(vector, seed=1)
    amount = next(w for w in result["weights"] if w["feature"] == "amount")
    assert "amount" in amount["condition"]
    assert any(op in amount["condition"] for op in ("<=", ">"))
    assert amount["step"] is None


class Recorder:
    """The real booster, keeping every batch LIME asks it to predict."""

    def __init__(self, booster: lgb.Booster) -> None:
        self.booster = booster
        self.batches: list[np.ndarray] = []

    def predict(self, data: np.ndarray, *, raw_score: bool = False, num_threads: int = 0) -> Any:
        if data.shape[0] > 1:
            self.batches.append(np.array(data))
        return self.booster.predict(data, raw_score=raw_score, num_threads=num_threads)


@pytest.mark.parametrize("discretizer", DISCRETIZERS)
def test_a_missing_feature_is_held_missing_and_left_out(model: Any, discretizer: str) -> None:
    booster, background, rows = model
    recorder = Recorder(booster)
    options = dataclasses.replace(FAST, discretizer=discretizer, stability_seeds=1)  # type: ignore[arg-type]
    lime = LimeExplainer(recorder, background, NAMES, ["channel"], options, review_threshold=0.5)
    vector = with_device(rows, missing=True)
    result = lime.explain(vector, seed=5)
    assert result["held_missing"] == ["device_age"]
    assert "device_age" not in {w["feature"] for w in result["weights"]}
    assert all(math.isfinite(w["weight"]) and math.isfinite(w["value"]) for w in result["weights"])
    assert math.isfinite(result["local_fit_r2"])
    assert result["score"] == booster.predict(np.array([vector]), num_threads=1)[0]
    perturbed = np.vstack(recorder.batches[-2:])  # the explanation and its stability seed
    assert np.isnan(perturbed[:, DEVICE]).all()  # the model saw it missing, as it did
    assert not np.isnan(np.delete(perturbed, DEVICE, axis=1)).any()


@pytest.mark.parametrize("discretizer", DISCRETIZERS)
def test_a_present_value_is_explained_despite_missing_ones_in_the_background(
    model: Any, discretizer: str
) -> None:
    assert np.isnan(model[1][:, DEVICE]).any()
    vector = with_device(model[2], missing=False)
    result = explainer(model, discretizer=discretizer, num_features=8).explain(vector, seed=5)
    assert result["held_missing"] == []
    assert {w["feature"] for w in result["weights"]} == set(NAMES)
    assert all(math.isfinite(w["weight"]) for w in result["weights"])


def test_categorical_samples_keep_the_codes_of_the_background(model: Any) -> None:
    booster, background, rows = model
    recorder = Recorder(booster)
    lime = LimeExplainer(recorder, background, NAMES, ["channel"], FAST, review_threshold=0.5)
    lime.explain(with_device(rows, missing=False), seed=5)
    codes = set(np.unique(recorder.batches[-1][:, CHANNEL]))
    assert codes == set(np.unique(background[:, CHANNEL]))  # whole codes, never in between


def test_stability_is_the_top_five_agreement_with_the_next_seeds(model: Any) -> None:
    vector = with_device(model[2], missing=False)
    result = explainer(model, stability_seeds=2).explain(vector, seed=42)
    plain = explainer(model, stability_seeds=0)
    shown = top_features(plain.explain(vector, seed=42)["weights"])
    others = [top_features(plain.explain(vector, seed=s)["weights"]) for s in (43, 44)]
    assert result["stability"] == pytest.approx(np.mean([jaccard(shown, o) for o in others]))
    assert result["stability_seeds"] == 2
    assert plain.explain(vector, seed=42)["stability"] is None


def test_stability_seeds_cost_one_more_lime_run_each(model: Any) -> None:
    booster, background, rows = model
    counts = []
    for seeds in (0, 3):
        recorder = Recorder(booster)
        options = dataclasses.replace(FAST, stability_seeds=seeds)
        lime = LimeExplainer(recorder, background, NAMES, ["channel"], options)
        lime.explain(with_device(rows, missing=False), seed=1)
        counts.append(len(recorder.batches))
    assert counts == [1, 4]


def test_a_vector_with_every_feature_missing_is_refused(model: Any) -> None:
    with pytest.raises(ValueError, match="every feature"):
        explainer(model).explain([math.nan] * len(NAMES), seed=1)


def test_missing_background_cells_are_drawn_from_the_observed_values() -> None:
    background = np.array([[1.0, np.nan], [2.0, 5.0], [np.nan, 7.0], [4.0, np.nan]])
    filled = fill_missing(background)
    assert not np.isnan(filled).any()
    assert np.array_equal(filled, fill_missing(background))  # deterministic
    assert filled[2, 0] in (1.0, 2.0, 4.0)
    assert {filled[0, 1], filled[3, 1]} <= {5.0, 7.0}
    assert np.isnan(background).sum() == 3  # the model's background is left as it was
    assert (fill_missing(np.full((3, 1), np.nan)) == 0).all()


def test_explainers_per_missing_pattern_are_bounded(
    model: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("fraudsvc.explain.MAX_PATTERNS", 1)
    lime = explainer(model)
    present, missing = with_device(model[2], missing=False), with_device(model[2], missing=True)
    first = lime.explain(present, seed=3)
    lime.explain(missing, seed=3)  # another pattern: the first explainer goes
    assert len(lime._explainers) == 1
    assert lime.explain(present, seed=3)["weights"] == first["weights"]
