"""Which model the service serves: none yet, the registry's champion, the local copy when the
registry is down, a new version when the alias moves, and never a model of another spec."""

from __future__ import annotations

import asyncio
import shutil
import socket
from pathlib import Path

import msgspec
import pytest

from fraudsvc.features import Declaration
from fraudsvc.model import registry
from fraudsvc.model.bundle import BundleMeta
from fraudsvc.settings import Settings
from tests.service import running_service, service_env
from tests.service import transaction as tx

pytestmark = pytest.mark.slow


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def copy_store(source: Path, target: Path) -> Path:
    """A private copy of a data folder with its MLflow store (artifact paths stay absolute)."""
    shutil.copytree(source, target)
    return target


async def test_without_a_model_the_service_starts_and_says_how_to_get_one(
    tmp_path: Path, database_url: str
) -> None:
    settings = Settings.from_env(service_env(tmp_path / "empty", database_url))
    async with running_service(settings) as client:
        ready = await client.get("/readyz")
        scored = await client.post("/v1/transactions", json=tx())
    assert ready.status_code == 503
    assert ready.json()["checks"]["model"]["ok"] is False
    assert "make train" in ready.json()["checks"]["model"]["detail"]
    assert scored.status_code == 503
    assert scored.json()["error"] == "no_model"
    assert "make train" in scored.json()["message"]


async def test_registry_unreachable_serves_the_local_copy(
    registry_dir: Path, database_url: str, tmp_path: Path
) -> None:
    data = copy_store(registry_dir, tmp_path / "data")
    async with running_service(Settings.from_env(service_env(data, database_url))) as client:
        assert (await client.post("/v1/transactions", json=tx())).status_code == 201
    offline = service_env(
        data, database_url, MLFLOW_TRACKING_URI=f"http://127.0.0.1:{closed_port()}"
    )
    async with running_service(Settings.from_env(offline)) as client:
        ready = (await client.get("/readyz")).json()
        scored = await client.post("/v1/transactions", json=tx())
    assert ready["checks"]["model"] == {
        "ok": True,
        "detail": "fraud-detection-model v1 from the local copy",
    }
    assert scored.status_code == 201
    assert scored.json()["model"]["version"] == "1"


async def test_registry_unreachable_without_a_local_copy_is_not_ready(
    tmp_path: Path, database_url: str
) -> None:
    offline = service_env(
        tmp_path / "nothing", database_url, MLFLOW_TRACKING_URI=f"http://127.0.0.1:{closed_port()}"
    )
    async with running_service(Settings.from_env(offline)) as client:
        ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert "unreachable and no local copy" in ready.json()["checks"]["model"]["detail"]


async def test_the_service_follows_the_alias_without_dropping_requests(
    registry_dir: Path, database_url: str, tmp_path: Path
) -> None:
    data = copy_store(registry_dir, tmp_path / "data")
    env = service_env(data, database_url, FRAUDSVC_MODEL_POLL_SECONDS="0.2")
    settings = Settings.from_env(env)
    ms = settings.mlflow
    champion = registry.version_for_alias(ms, ms.model_name, "champion")
    assert champion is not None
    source = registry.client(ms).get_model_version(ms.model_name, champion.version).source
    assert source is not None
    async with running_service(settings) as client:
        first = (await client.post("/v1/transactions", json=tx())).json()
        new_version = registry.register(ms, source, tags={"note": "same model, new version"})
        registry.client(ms).set_registered_model_alias(ms.model_name, "champion", new_version)
        versions = []
        for _ in range(60):  # keep scoring while the switch happens
            response = await client.post("/v1/transactions", json=tx())
            assert response.status_code == 201
            versions.append(response.json()["model"]["version"])
            if versions[-1] == new_version:
                break
            await asyncio.sleep(0.05)
    assert first["model"]["version"] == "1"
    assert versions[-1] == new_version == "2"


async def test_a_model_whose_features_this_code_cannot_compute_is_refused(
    registry_dir: Path, database_url: str, tmp_path: Path
) -> None:
    data = copy_store(registry_dir, tmp_path / "data")
    settings = Settings.from_env(service_env(data, database_url))
    ms = settings.mlflow
    good = registry.load_version(ms, ms.model_name, "1", settings.paths.model_cache_dir)
    # a label delay longer than the terminal windows' shift: those would read labels too young
    other = {**good.meta.feature_spec, "label_delay": 30 * 86_400}
    meta = msgspec.structs.replace(
        good.meta, feature_spec=other, feature_hash=Declaration.from_dict(other).hash
    )
    assert isinstance(meta, BundleMeta)
    with registry.fluent(ms):
        import mlflow

        experiment = registry.ensure_experiment(ms)
        with mlflow.start_run(experiment_id=experiment):
            uri = registry.log_bundle(good.booster, meta, good.background, good.background[:5])
    version = registry.register(ms, uri, tags={})
    registry.client(ms).set_registered_model_alias(ms.model_name, "champion", version)

    async with running_service(settings) as client:
        ready = await client.get("/readyz")
        scored = await client.post("/v1/transactions", json=tx())
    detail = ready.json()["checks"]["model"]["detail"]
    assert ready.status_code == 503
    assert f"v{version} refused" in detail
    assert "cannot compute" in detail
    assert "terminal_risk_1d" in detail
    assert scored.status_code == 503
