"""The served model: loaded from the registry alias, kept in a local copy, followed when it moves.

- Startup loads `models:/<MLFLOW_MODEL_NAME>@<MLFLOW_MODEL_ALIAS>` into the local cache and
  writes a pointer `<cache>/<name>/<alias>.json`.
- If the registry cannot be reached, the version named by that pointer is served from the cache,
  with a warning; with neither, the service runs without a model and says why.
- A background task checks the alias every FRAUDSVC_MODEL_POLL_SECONDS; a new version is loaded
  and checked in a thread and swapped in as one reference assignment, so a request in flight
  keeps the bundle it started with and none is dropped.
- A model whose feature declaration this code cannot compute is refused, never served (the bundle
  checks itself when loaded; the scorer checks that the database keeps its buckets).

All MLflow I/O happens in worker threads (`asyncio.to_thread`): it is blocking.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from loguru import logger

from fraudsvc.model import registry
from fraudsvc.model.bundle import ModelBundle, ModelRefused, load_bundle
from fraudsvc.settings import Settings

# Fail fast against an unreachable tracking server instead of MLflow's minutes of retries;
# the local copy covers the gap. Set them yourself to override.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")

NO_MODEL_HINT = "train one with `make train` (or `fraudsvc train`)"


@dataclass(frozen=True)
class ModelStatus:
    loaded: bool
    name: str
    version: str | None
    source: str | None
    """registry or local copy"""
    problem: str | None
    loaded_at: datetime | None
    last_check: datetime | None


class ModelHolder:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.name = settings.mlflow.model_name
        self.alias = settings.mlflow.model_alias
        self._bundle: ModelBundle | None = None
        self._versions: dict[tuple[str, str], ModelBundle] = {}
        self._lock = threading.Lock()
        self.source: str | None = None
        self.problem: str | None = "the model has not been loaded yet"
        self.loaded_at: datetime | None = None
        self.last_check: datetime | None = None
        self.listeners: list[Callable[[str], None]] = []
        """Called with "loaded", "refused" or "registry_unreachable" (metrics listen)."""

    # ------------------------------------------------------------------ serving side

    @property
    def current(self) -> ModelBundle | None:
        return self._bundle

    def status(self) -> ModelStatus:
        bundle = self._bundle
        return ModelStatus(
            loaded=bundle is not None,
            name=self.name,
            version=bundle.version if bundle else None,
            source=self.source,
            problem=self.problem,
            loaded_at=self.loaded_at,
            last_check=self.last_check,
        )

    async def load(self) -> None:
        await asyncio.to_thread(self.refresh)

    async def follow(self) -> None:
        """Check the alias forever; run as a background task."""
        while True:
            await asyncio.sleep(self.settings.mlflow.poll_seconds)
            try:
                await asyncio.to_thread(self.refresh)
            except Exception:  # never let the follower die; the next round tries again
                logger.exception("model refresh failed")

    # ------------------------------------------------------------------ loading

    @property
    def _pointer(self) -> Path:
        return self.settings.paths.model_cache_dir / self.name / f"{self.alias}.json"

    def refresh(self) -> None:
        """Resolve the alias and load its version if it is not the one being served."""
        ms = self.settings.mlflow
        self.last_check = datetime.now(UTC)
        try:
            ref = registry.version_for_alias(ms, self.name, self.alias)
        except registry.RegistryUnavailable as exc:
            self._registry_down(str(exc))
            return
        if ref is None:
            why = f"no version of {self.name!r} carries alias {self.alias!r}: {NO_MODEL_HINT}"
            if self._bundle is None:
                self.problem = why
                logger.warning("no model to serve: {}", why)
            else:
                logger.warning("{}; still serving v{}", why, self._bundle.version)
            return
        current = self._bundle
        if current is not None and current.version == ref.version and self.source == "registry":
            return
        try:
            bundle = self.version(ref.version)
        except (ModelRefused, registry.RegistryUnavailable) as exc:
            self._refused(ref.version, str(exc))
            return
        self._pointer.parent.mkdir(parents=True, exist_ok=True)
        self._pointer.write_text(json.dumps({"version": ref.version, "saved_at": time.time()}))
        self._serve(bundle, "registry")

    def version(self, version: str, name: str | None = None) -> ModelBundle:
        """A specific version (the worker explains with the version that scored), from the
        local copy when there is one, else from the registry; cached in memory."""
        name = name or self.name
        with self._lock:
            cached = self._versions.get((name, version))
        if cached is not None:
            return cached
        ms = self.settings.mlflow
        cache = self.settings.paths.model_cache_dir
        local = registry.cached_model_dir(cache, name, version)
        if (local / "MLmodel").is_file():
            bundle = load_bundle(local, name=name, version=version)
        else:
            bundle = registry.load_version(ms, name, version, cache)
        with self._lock:
            self._versions[(name, version)] = bundle
        return bundle

    def _serve(self, bundle: ModelBundle, source: str) -> None:
        previous = self._bundle
        self._bundle = bundle
        self.source = source
        self.problem = None
        self.loaded_at = datetime.now(UTC)
        if previous is None or previous.version != bundle.version:
            logger.info(
                "serving model {} v{} from the {} (thresholds review {:.4f}, block {:.4f})",
                bundle.name,
                bundle.version,
                source,
                bundle.thresholds.review,
                bundle.thresholds.block,
            )
            self._emit("loaded")

    def _emit(self, event: str) -> None:
        for listener in self.listeners:
            listener(event)

    def _refused(self, version: str, why: str) -> None:
        self._emit("refused")
        if self._bundle is None:
            self.problem = f"model {self.name} v{version} refused: {why}"
            logger.error(self.problem)
        else:
            logger.error(
                "model {} v{} refused, still serving v{}: {}",
                self.name,
                version,
                self._bundle.version,
                why,
            )

    def _registry_down(self, why: str) -> None:
        self._emit("registry_unreachable")
        if self._bundle is not None:
            logger.warning("registry unreachable, still serving v{}: {}", self._bundle.version, why)
            return
        try:
            pointer = json.loads(self._pointer.read_text())
            version = str(pointer["version"])
        except (OSError, ValueError, KeyError):
            self.problem = f"the registry is unreachable and no local copy exists ({why})"
            logger.error(self.problem)
            return
        try:
            bundle = self.version(version)
        except (ModelRefused, registry.RegistryUnavailable) as exc:
            self.problem = f"the registry is unreachable and the local copy is unusable: {exc}"
            logger.error(self.problem)
            return
        logger.warning(
            "registry unreachable ({}); serving the local copy of {} v{}", why, self.name, version
        )
        self._serve(bundle, "local copy")
