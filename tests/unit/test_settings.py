"""Settings: defaults that run locally, and a bad value names its variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from fraudsvc.explain_options import LimeOptions
from fraudsvc.settings import Settings, SettingsError, hash_api_key


def test_defaults_run_locally_without_any_variable() -> None:
    s = Settings.from_env({})
    assert s.mlflow.tracking_uri.startswith("sqlite:////")
    assert s.mlflow.tracking_uri.endswith("data/mlflow/mlflow.db")
    assert s.mlflow.artifact_root is not None
    assert s.mlflow.artifact_root.startswith("file:///")
    assert s.mlflow.experiment == "fraud-detection"
    assert s.mlflow.model_name == "fraud-detection-model"
    assert s.mlflow.model_alias == "champion"
    assert s.database.url.startswith("postgresql://")
    assert s.redis.url.startswith("redis://127.0.0.1:6379")
    assert s.explain.policy == "flagged"
    assert s.redis.queue_name == "fraudsvc:explain:fraudsvc"
    assert s.api.api_key_hashes == ()


def test_a_tracking_server_chooses_its_own_artifact_location() -> None:
    s = Settings.from_env({"MLFLOW_TRACKING_URI": "http://mlflow:5000"})
    assert s.mlflow.artifact_root is None
    pinned = Settings.from_env(
        {"MLFLOW_TRACKING_URI": "http://mlflow:5000", "FRAUDSVC_MLFLOW_ARTIFACT_ROOT": "s3://b/x"}
    )
    assert pinned.mlflow.artifact_root == "s3://b/x"


def test_data_dir_moves_every_derived_path(tmp_path: Path) -> None:
    s = Settings.from_env({"FRAUDSVC_DATA_DIR": str(tmp_path)})
    assert s.paths.data_file == tmp_path / "transactions.parquet"
    assert s.mlflow.tracking_uri == f"sqlite:///{tmp_path}/mlflow/mlflow.db"
    assert s.paths.model_cache_dir == tmp_path / "model-cache"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MLFLOW_AUC_THRESHOLD", "1.5"),
        ("MLFLOW_AUC_THRESHOLD", "high"),
        ("FRAUDSVC_PORT", "0"),
        ("FRAUDSVC_EXPLAIN", "sometimes"),
        ("FRAUDSVC_EXPLAIN_SAMPLE_RATE", "nan"),
        ("DATABASE_URL", "mysql://localhost/x"),
        ("REDIS_URL", "localhost:6379"),
        ("LOG_LEVEL", "LOUD"),
        ("FRAUDSVC_API_KEYS", "short"),
        ("FRAUDSVC_API_KEYS", "sha256:xyz"),
        ("FRAUDSVC_LIME_NUM_FEATURES", "5"),
        ("FRAUDSVC_LIME_DISCRETIZER", "median"),
        ("FRAUDSVC_LIME_SAMPLE_AROUND_INSTANCE", "maybe"),
        ("FRAUDSVC_LIME_KERNEL_WIDTH_FACTOR", "0"),
        ("FRAUDSVC_LIME_TARGET", "logit"),
        ("FRAUDSVC_LIME_STABILITY_SEEDS", "11"),
    ],
)
def test_a_bad_value_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({name: value})
    assert name in str(info.value)
    assert value in str(info.value)


def test_every_bad_variable_is_reported_at_once() -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"FRAUDSVC_PORT": "x", "MLFLOW_AUC_THRESHOLD": "y"})
    assert len(info.value.problems) == 2


def test_api_keys_are_held_hashed_and_never_shown() -> None:
    s = Settings.from_env(
        {"FRAUDSVC_API_KEYS": f"first-secret-key, sha256:{hash_api_key('second-key-00')}"}
    )
    assert s.api.api_key_hashes == (hash_api_key("first-secret-key"), hash_api_key("second-key-00"))
    assert "first-secret-key" not in repr(s)
    assert hash_api_key("first-secret-key") not in repr(s)


def test_lime_defaults_are_the_options_the_benchmark_chose() -> None:
    assert Settings.from_env({}).explain.lime == LimeOptions()


def test_every_lime_option_has_its_variable() -> None:
    s = Settings.from_env(
        {
            "FRAUDSVC_LIME_NUM_SAMPLES": "2000",
            "FRAUDSVC_LIME_NUM_FEATURES": "8",
            "FRAUDSVC_LIME_DISCRETIZER": "Quartile",
            "FRAUDSVC_LIME_SAMPLE_AROUND_INSTANCE": "false",
            "FRAUDSVC_LIME_KERNEL_WIDTH_FACTOR": "1.5",
            "FRAUDSVC_LIME_TARGET": "probability",
            "FRAUDSVC_LIME_STABILITY_SEEDS": "0",
            "FRAUDSVC_LIME_SEED": "7",
        }
    )
    assert s.explain.lime == LimeOptions(
        num_samples=2000,
        num_features=8,
        discretizer="quartile",
        sample_around_instance=False,
        kernel_width_factor=1.5,
        target="probability",
        stability_seeds=0,
    )
    assert s.explain.seed == 7
