"""The model bundle: a native LightGBM booster plus what serving and explaining it need.

On disk (inside the MLflow model directory) the booster is LightGBM's text format (`model.lgb`);
the rest sits in `extra_files/`: `fraudsvc.json` (the feature declaration and its hash, decision
thresholds, the training references for drift, training facts) and `background.npy` (the LIME
background sample, loaded with `allow_pickle=False`). Nothing is pickled.

A bundle is checked when it is loaded: a declaration this code cannot compute (an aggregate or
field it does not know...), a hash that does not match the declaration, or a booster whose
features do not follow it, refuse the model with the reason. Bundles of format 1 (before
declarations) carried the Handbook's feature spec; it is read as the equivalent declaration.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import msgspec
import numpy as np

from fraudsvc.decision import Thresholds
from fraudsvc.features import Declaration
from fraudsvc.features.default import BASELINE, baseline_features
from fraudsvc.model.fast_predict import FastPaths, fast_paths
from fraudsvc.model.reference import Reference

BUNDLE_FORMAT = 2
LEGACY_FORMAT = 1
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
    feature_spec: dict[str, Any]
    """The feature declaration (`Declaration.to_dict()`)."""
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
    declaration: Declaration
    name: str = "local"
    version: str = "0"
    path: Path | None = None
    fast: FastPaths | None = field(default=None, compare=False, repr=False)
    """Single-row score and contributions (fast_predict); None: `booster.predict` serves."""

    @property
    def thresholds(self) -> Thresholds:
        return Thresholds(review=self.meta.thresholds.review, block=self.meta.thresholds.block)

    @property
    def feature_names(self) -> list[str]:
        return list(self.declaration.names)


def _legacy_declaration(spec: dict[str, Any]) -> Declaration:
    """The declaration equal to a format-1 feature spec (the Handbook's features)."""
    features = baseline_features(
        customer_windows=tuple((str(lab), int(sec)) for lab, sec in spec["customer_windows"]),
        terminal_windows=tuple((str(lab), int(sec)) for lab, sec in spec["terminal_windows"]),
        label_delay=int(spec["label_delay_seconds"]),
        night_end_hour=int(spec["night_end_hour"]),
    )
    return msgspec.structs.replace(
        BASELINE, features=tuple(features), label_delay=int(spec["label_delay_seconds"])
    )


def declaration_of(meta: BundleMeta, booster: lgb.Booster, who: str) -> Declaration:
    """The model's declaration, or ModelRefused saying why this code cannot serve it."""
    try:
        if meta.format == LEGACY_FORMAT:
            decl = _legacy_declaration(meta.feature_spec)
            if list(decl.names) != list(meta.feature_spec.get("names", [])):
                raise ValueError("its feature names are not the Handbook's")
        else:
            decl = Declaration.from_dict(meta.feature_spec)
            if decl.hash != meta.feature_hash:
                raise ValueError(
                    f"declaration hash {decl.hash[:12]} differs from the stored "
                    f"{meta.feature_hash[:12]} (the file was altered)"
                )
    except (msgspec.ValidationError, KeyError, TypeError, ValueError) as exc:
        raise ModelRefused(f"{who}: unreadable feature declaration: {exc}") from exc
    problems = decl.problems()
    if problems:
        raise ModelRefused(
            f"{who}: this version of fraudsvc cannot compute its features: " + "; ".join(problems)
        )
    if list(booster.feature_name()) != list(decl.names):
        raise ModelRefused(f"{who}: the booster's features do not follow its declaration")
    return decl


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
    if meta.format not in (LEGACY_FORMAT, BUNDLE_FORMAT):
        raise ModelRefused(f"model {name} v{version}: bundle format {meta.format} unsupported")
    booster = lgb.Booster(model_file=str(booster_path))
    declaration = declaration_of(meta, booster, f"model {name} v{version}")
    background = np.load(background_path, allow_pickle=False)
    return ModelBundle(
        booster=booster,
        meta=meta,
        background=background,
        declaration=declaration,
        name=name,
        version=version,
        path=model_dir,
        # made here, where the ModelHolder loads a version in a worker thread (about 15 ms on
        # the bench model), not on the first request; freed with the bundle
        fast=fast_paths(booster),
    )
