"""MLflow I/O: the experiment, registered versions and aliases, and downloads into a local cache.

Every call takes the settings explicitly (an `MlflowClient` bound to the configured URI), so the
web process, the worker and the CLI never depend on MLflow's process-wide fluent state; only
`fraudsvc train` sets it, because logging a model goes through the fluent API.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from fraudsvc.model.bundle import (
    BUNDLE_FORMAT,
    BundleMeta,
    ModelBundle,
    load_bundle,
    write_extra_files,
)
from fraudsvc.settings import MlflowSettings

# MLflow draws tqdm bars on every download; our own logs say what happens.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


class RegistryUnavailable(RuntimeError):
    """The MLflow tracking/registry store could not be reached or read."""


@dataclass(frozen=True)
class VersionRef:
    name: str
    version: str
    run_id: str | None
    aliases: tuple[str, ...]


def _ensure_local_store(settings: MlflowSettings) -> None:
    """Create the folders of a local SQLite store and a file artifact root."""
    uri = urlparse(settings.tracking_uri)
    if uri.scheme == "sqlite" and uri.path not in ("", "/:memory:"):
        Path(uri.path).parent.mkdir(parents=True, exist_ok=True)
    if settings.artifact_root is None:
        return
    artifacts = urlparse(settings.artifact_root)
    if artifacts.scheme in ("", "file"):
        Path(artifacts.path).mkdir(parents=True, exist_ok=True)


def client(settings: MlflowSettings) -> MlflowClient:
    _ensure_local_store(settings)
    return MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)


@contextmanager
def fluent(settings: MlflowSettings) -> Iterator[None]:
    """Point MLflow's process-wide (fluent) API at our store for the duration of a block.

    `mlflow.set_tracking_uri` also writes MLFLOW_TRACKING_URI into os.environ; both that and
    MLflow's globals are restored afterwards, so nothing leaks into later settings reads.
    """
    import mlflow

    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.tracking_uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(saved["MLFLOW_TRACKING_URI"])  # type: ignore[arg-type]
        mlflow.set_registry_uri(saved["MLFLOW_REGISTRY_URI"])  # type: ignore[arg-type]
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def ensure_experiment(settings: MlflowSettings) -> str:
    """The experiment's id, creating it with an absolute artifact location if needed."""
    c = client(settings)
    experiment = c.get_experiment_by_name(settings.experiment)
    if experiment is not None:
        return str(experiment.experiment_id)
    return str(c.create_experiment(settings.experiment, artifact_location=settings.artifact_root))


def log_bundle(booster: Any, meta: BundleMeta, background: np.ndarray, sample: np.ndarray) -> str:
    """Log a booster with its bundle files as an MLflow model; returns the model URI.

    Call inside `fluent()` and an active run. The booster is stored as LightGBM text and the
    bundle files beside it in `extra_files/`; nothing is pickled.
    """
    import lightgbm as lgb
    import mlflow
    import pandas as pd
    from mlflow.models import infer_signature

    names = list(booster.feature_name())
    with tempfile.TemporaryDirectory() as tmp:
        extra = write_extra_files(Path(tmp), meta, background)
        frame = pd.DataFrame(sample, columns=names)
        signature = infer_signature(frame, booster.predict(sample))
        logged = mlflow.lightgbm.log_model(
            booster,
            name="model",
            extra_files=[str(p) for p in extra],
            signature=signature,
            pip_requirements=[f"lightgbm=={lgb.__version__}", f"numpy=={np.__version__}"],
            metadata={"feature_hash": meta.feature_hash, "fraudsvc_bundle_format": BUNDLE_FORMAT},
        )
    return str(logged.model_uri)


def register(settings: MlflowSettings, model_uri: str, tags: dict[str, str]) -> str:
    """Register a logged model as a new version of MLFLOW_MODEL_NAME; returns the version."""
    import mlflow

    with fluent(settings):
        mv = mlflow.register_model(model_uri, settings.model_name, tags=tags)
    return str(mv.version)


def _ref(mv: ModelVersion) -> VersionRef:
    return VersionRef(
        name=mv.name,
        version=str(mv.version),
        run_id=mv.run_id,
        aliases=tuple(mv.aliases or ()),
    )


def version_for_alias(settings: MlflowSettings, name: str, alias: str) -> VersionRef | None:
    """The version an alias points at; None when the model or the alias does not exist."""
    try:
        mv = client(settings).get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise RegistryUnavailable(f"MLflow registry at {settings.tracking_uri}: {exc}") from exc
    except Exception as exc:  # connection errors, unreadable stores
        raise RegistryUnavailable(f"MLflow registry at {settings.tracking_uri}: {exc}") from exc
    return _ref(mv)


def get_version(settings: MlflowSettings, name: str, version: str) -> VersionRef:
    try:
        return _ref(client(settings).get_model_version(name, version))
    except Exception as exc:
        raise RegistryUnavailable(
            f"model {name} v{version} at {settings.tracking_uri}: {exc}"
        ) from exc


def cached_model_dir(cache_dir: Path, name: str, version: str) -> Path:
    return cache_dir / name / f"v{version}"


def download_version(settings: MlflowSettings, name: str, version: str, cache_dir: Path) -> Path:
    """The local copy of a registered version, downloading it once (versions are immutable)."""
    target = cached_model_dir(cache_dir, name, version)
    if (target / "MLmodel").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".v{version}-", dir=target.parent))
    try:
        from mlflow.artifacts import download_artifacts

        source = client(settings).get_model_version_download_uri(name, version)
        local = download_artifacts(
            artifact_uri=source, dst_path=str(staging), tracking_uri=settings.tracking_uri
        )
        if target.exists():  # another process finished first
            return target
        Path(local).rename(target)
    except Exception as exc:
        raise RegistryUnavailable(f"downloading model {name} v{version}: {exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def load_version(settings: MlflowSettings, name: str, version: str, cache_dir: Path) -> ModelBundle:
    """A registered version as a bundle, from the local copy when there is one."""
    path = download_version(settings, name, version, cache_dir)
    return load_bundle(path, name=name, version=version)


def resolve_model_uri(settings: MlflowSettings, uri: str) -> tuple[str, str]:
    """(name, version) of `models:/name@alias`, `models:/name/version` or `models:/name`."""
    if not uri.startswith("models:/"):
        raise ValueError(f"{uri!r}: expected models:/<name>@<alias> or models:/<name>/<version>")
    rest = uri.removeprefix("models:/")
    if "@" in rest:
        name, alias = rest.split("@", 1)
        ref = version_for_alias(settings, name, alias)
        if ref is None:
            raise ValueError(f"{uri}: no registered version carries alias {alias!r}")
        return name, ref.version
    if "/" in rest:
        name, version = rest.split("/", 1)
        return name, get_version(settings, name, version).version
    ref = version_for_alias(settings, rest, settings.model_alias)
    if ref is None:
        raise ValueError(f"{uri}: no version of {rest!r} carries alias {settings.model_alias!r}")
    return rest, ref.version
