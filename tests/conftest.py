"""Shared fixtures: settings pointing at temporary folders, small generated data sets."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fraudsvc.datagen import GeneratorConfig, generate
from fraudsvc.settings import Settings

SettingsFactory = Callable[..., Settings]


@pytest.fixture(scope="session")
def small_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 210k transactions over 100 days: every period holds enough frauds to train on."""
    out = tmp_path_factory.mktemp("data") / "small.parquet"
    generate(
        GeneratorConfig(
            customers=1_000,
            terminals=2_000,
            days=100,
            start=datetime(2026, 1, 1, tzinfo=UTC),
            seed=11,
        ),
        out,
    )
    return out


@pytest.fixture
def make_settings(tmp_path: Path) -> SettingsFactory:
    """Settings whose data folder (and so the MLflow store) is this test's temporary folder."""

    def build(**env: str) -> Settings:
        base = {"FRAUDSVC_DATA_DIR": str(tmp_path / "data")}
        return Settings.from_env({**base, **env})

    return build
