"""The model bundle: a native LightGBM booster plus what serving and explaining it need.

On disk (inside the MLflow model directory) the booster is LightGBM's text format (`model.lgb`);
the rest sits in `extra_files/`: `fraudsvc.json` (feature spec and its hash, decision thresholds,
the training references for drift, training facts) and `background.npy` (the LIME background
sample, loaded with `allow_pickle=False`). Nothing is pickled.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import msgspec
import numpy as np

from fraudsvc.decision import Thresholds
from fraudsvc.features import FeatureSpec, spec_mismatch
from fraudsvc.model.reference import Reference

BUNDLE_FORMAT = 1
META_FILE = "fraudsvc.json"
BACKGROUND_FILE = "background.npy"
BOOSTER_FILE = "model.lgb"
EXTRA_DIR = "extra_files"


class ModelRefused(RuntimeError):
    """A model that this code must not serve (wrong feature spec, unreadable files)."""


class ThresholdMeta(msgspec.Struct, frozen=True):
    review: float
    block: float
    rule: str


class BundleMeta(msgspec.Struct, frozen=True):
    format: int
    feature_spec: dict[str, object]
    feature_hash: str
    thresholds: ThresholdMeta
    feature_reference: dict[str, Reference]
    score_reference: Reference
    training: dict[str, object]


@dataclass(frozen=True)
class ModelBundle:
    booster: lgb.Booster
    meta: BundleMeta
    background: np.ndarray
    name: str = "local"
    version: str = "0"
    path: Path | None = None

    @property
    def thresholds(self) -> Thresholds:
        return Thresholds(review=self.meta.thresholds.review, block=self.meta.thresholds.block)

    @property
    def feature_names(self) -> list[str]:
        names = self.meta.feature_spec["names"]
        assert isinstance(names, list)
        return [str(n) for n in names]

    def check_spec(self, spec: FeatureSpec) -> None:
        """Refuse a model whose feature spec differs from the code's, saying why."""
        why = spec_mismatch(spec, self.meta.feature_spec, self.meta.feature_hash)
        if why is not None:
            raise ModelRefused(f"model {self.name} v{self.version}: {why}")
        if list(self.booster.feature_name()) != list(spec.names):
            raise ModelRefused(
                f"model {self.name} v{self.version}: booster features do not follow the spec"
            )


def write_extra_files(directory: Path, meta: BundleMeta, background: np.ndarray) -> list[Path]:
    """Write the bundle's side files; returns them for MLflow's `extra_files`."""
    directory.mkdir(parents=True, exist_ok=True)
    meta_path = directory / META_FILE
    meta_path.write_bytes(msgspec.json.format(msgspec.json.encode(meta)))
    background_path = directory / BACKGROUND_FILE
    np.save(background_path, np.ascontiguousarray(background, dtype=np.float64))
    return [meta_path, background_path]


def load_bundle(model_dir: Path, name: str = "local", version: str = "0") -> ModelBundle:
    """Load a downloaded MLflow model directory written by `fraudsvc train`."""
    booster_path = model_dir / BOOSTER_FILE
    meta_path = model_dir / EXTRA_DIR / META_FILE
    background_path = model_dir / EXTRA_DIR / BACKGROUND_FILE
    for needed in (booster_path, meta_path, background_path):
        if not needed.is_file():
            raise ModelRefused(
                f"model {name} v{version}: {needed.name} missing in {model_dir}; "
                "was it registered by `fraudsvc train`?"
            )
    try:
        meta = msgspec.json.decode(meta_path.read_bytes(), type=BundleMeta)
    except msgspec.ValidationError as exc:
        raise ModelRefused(f"model {name} v{version}: unreadable {META_FILE}: {exc}") from exc
    if meta.format != BUNDLE_FORMAT:
        raise ModelRefused(f"model {name} v{version}: bundle format {meta.format} unsupported")
    booster = lgb.Booster(model_file=str(booster_path))
    background = np.load(background_path, allow_pickle=False)
    return ModelBundle(
        booster=booster,
        meta=meta,
        background=background,
        name=name,
        version=version,
        path=model_dir,
    )
