"""generate -> train -> MLflow registry -> load by alias, with the gate and the promotion rule.

Real MLflow: a SQLite store and an artifact folder in the test's temporary directory.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from fraudsvc.cli import main
from fraudsvc.contract import ContractError, load_contract_file
from fraudsvc.features import DECLARATION, batch_features, feature_matrix
from fraudsvc.model import registry
from fraudsvc.training.evaluate import backtest
from fraudsvc.training.pipeline import TrainOptions, train
from fraudsvc.training.report import summary
from tests.conftest import SettingsFactory

pytestmark = pytest.mark.slow
FAST = {"resampling": "none", "max_rounds": 200}


def test_trained_model_is_registered_and_the_champion_scores_identically(
    make_settings: SettingsFactory, small_data: Path
) -> None:
    settings = make_settings()
    result = train(settings, TrainOptions(data=small_data, **FAST))  # type: ignore[arg-type]

    assert result.promotion.registered_version == "1"
    assert result.promotion.alias == "champion"
    assert result.model.average_precision > result.baseline.average_precision

    ms = settings.mlflow
    name, version = registry.resolve_model_uri(ms, f"models:/{ms.model_name}@champion")
    assert version == "1"
    bundle = registry.load_version(ms, name, version, settings.paths.model_cache_dir)
    assert bundle.declaration == DECLARATION
    assert bundle.thresholds == result.thresholds
    assert bundle.background.shape[1] == len(DECLARATION.names)

    frame = load_contract_file(small_data, require_labels=True).frame
    test_rows = batch_features(frame).filter(result.plan.test.mask())
    scores = bundle.booster.predict(feature_matrix(test_rows))
    np.testing.assert_array_equal(scores, result.test_scores)

    # the payment attributes' features beat the Handbook's five-field baseline on the same split
    assert result.lift is not None
    gain = result.lift.of(result.model)
    assert gain["average_precision"] > 0.02
    text = summary(result)
    assert "baseline only" in text
    assert f"{gain['average_precision']:+.4f}" in text
    run = registry.client(ms).get_run(result.run_id)
    assert run.data.metrics["lift_test_average_precision"] == pytest.approx(
        gain["average_precision"]
    )
    assert "baseline_features_test_average_precision" in run.data.metrics


def test_a_failing_gate_registers_nothing(make_settings: SettingsFactory, small_data: Path) -> None:
    settings = make_settings(MLFLOW_AUC_THRESHOLD="1.0")
    result = train(settings, TrainOptions(data=small_data, **FAST))  # type: ignore[arg-type]
    assert result.promotion.registered_version is None
    assert "below MLFLOW_AUC_THRESHOLD=1" in result.promotion.reason
    client = registry.client(settings.mlflow)
    assert client.search_registered_models() == []
    run = client.get_run(result.run_id)
    assert run.data.tags["registered_version"] == ""


def test_champion_moves_only_to_a_better_model(
    make_settings: SettingsFactory, small_data: Path
) -> None:
    settings = make_settings()
    weak = TrainOptions(data=small_data, resampling="none", max_rounds=1)
    strong = TrainOptions(data=small_data, resampling="none", max_rounds=200)

    first = train(settings, weak)
    assert first.promotion.alias == "champion"
    second = train(settings, strong)
    assert second.promotion.alias == "champion"
    assert second.promotion.champion_before == "1"
    third = train(settings, weak)
    assert third.promotion.registered_version == "3"
    assert third.promotion.alias == "challenger"
    assert "does not beat" in third.promotion.reason

    ms = settings.mlflow
    champion = registry.version_for_alias(ms, ms.model_name, "champion")
    challenger = registry.version_for_alias(ms, ms.model_name, "challenger")
    assert champion is not None
    assert champion.version == "2"
    assert challenger is not None
    assert challenger.version == "3"


def test_a_file_that_breaks_the_contract_trains_nothing(
    make_settings: SettingsFactory, small_data: Path, tmp_path: Path
) -> None:
    settings = make_settings()
    bad = tmp_path / "bad.parquet"
    frame = pl.read_parquet(small_data)
    frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 10).then(-1.0).otherwise(pl.col("amount")).alias("amount")
    ).write_parquet(bad)
    with pytest.raises(ContractError, match="'amount'"):
        train(settings, TrainOptions(data=bad, **FAST))  # type: ignore[arg-type]
    assert not Path(settings.mlflow.tracking_uri.removeprefix("sqlite:///")).exists()


def test_cli_train_then_evaluate_backtests_the_champion(
    make_settings: SettingsFactory,
    small_data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = make_settings()
    monkeypatch.setenv("FRAUDSVC_DATA_DIR", str(settings.paths.data_dir))
    assert main(["train", "--data", str(small_data), "--resampling", "none"]) == 0
    out = capsys.readouterr().out
    assert "registered    v1 alias champion" in out
    assert "logistic regr." in out

    scored = tmp_path / "scores.csv"
    code = main(
        [
            "evaluate",
            str(small_data),
            "--start",
            "2026-04-01",
            "--end",
            "2026-04-10",
            "--out",
            str(scored),
        ]
    )
    assert code == 0
    rows = pl.read_csv(scored)
    assert rows.columns == [
        "transaction_id",
        "timestamp",
        "customer_id",
        "is_fraud",
        "score",
        "decision",
    ]
    assert rows["decision"].is_in(["allow", "review", "block"]).all()
    assert rows["timestamp"].str.starts_with("2026-04-0").all() or rows.height > 0
    result = backtest(settings, small_data, None, None, None, None)
    assert result.model == f"{settings.mlflow.model_name} v1"
    assert "fraudsvc evaluate" in capsys.readouterr().out


def test_cli_reports_a_bad_setting_by_name(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MLFLOW_AUC_THRESHOLD", "2")
    assert main(["train"]) == 2
    assert "MLFLOW_AUC_THRESHOLD" in capsys.readouterr().err
