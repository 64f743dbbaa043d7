"""Shared fixtures: settings in temporary folders, small generated data sets, a database of
this test run (built by the real migrations, dropped at the end), an MLflow store with a
trained champion."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

import asyncpg
import pytest

from fraudsvc.datagen import GeneratorConfig, generate
from fraudsvc.db.admin import drop_database, migrate
from fraudsvc.embedded import Services, find_or_start
from fraudsvc.settings import Settings
from fraudsvc.training.pipeline import TrainOptions, train
from tests.raw_windows import TRUNCATE
from tests.service import forget_queues

SettingsFactory = Callable[..., Settings]
SERVICES = pytest.StashKey[Services]()


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


def pytest_configure(config: pytest.Config) -> None:
    """PostgreSQL and Redis for the run: FRAUDSVC_TEST_DATABASE_URL / FRAUDSVC_TEST_REDIS_URL
    when set, else the local servers when they answer, else embedded ones started here (a
    fresh machine with only Python and make runs the suite too)."""
    if "FRAUDSVC_TEST_DATABASE_URL" in os.environ and "FRAUDSVC_TEST_REDIS_URL" in os.environ:
        return
    folder = Path(__file__).resolve().parents[1] / "data" / "test-services"
    found = find_or_start(
        folder,
        os.environ.get("FRAUDSVC_TEST_DATABASE_URL"),
        os.environ.get("FRAUDSVC_TEST_REDIS_URL"),
    )
    server = urlparse(found.database_url)._replace(path="").geturl()
    os.environ["FRAUDSVC_TEST_DATABASE_URL"] = server
    os.environ["FRAUDSVC_TEST_REDIS_URL"] = found.redis_url
    config.stash[SERVICES] = found


def pytest_unconfigure(config: pytest.Config) -> None:
    forget_queues()  # before the servers stop: an embedded Redis goes with them anyway
    found = config.stash.get(SERVICES, None)
    if found is not None:
        found.stop()


SERVICE_TASKS = frozenset(
    {"arq-worker", "bucket-fold", "history-upkeep", "replan", "model-follower", "rulebook"}
    | {"loop-watch", "drift-monitor"}
)
"""The names of the background tasks a service or worker starts in its event loop."""


@pytest.fixture(scope="module", autouse=True)
async def no_service_outlives_its_module(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """Every test's services stop by the end of its module (module-scoped ones included). The
    run shares one event loop, so a worker left running would go on sweeping in the tests
    after it, which froze it while they were synchronous (CI saw a sweep, and a connection
    closed by the garbage collector, inside an unrelated test). It is stopped and named."""
    yield
    left = [t for t in asyncio.all_tasks() if t.get_name() in SERVICE_TASKS and not t.done()]
    for task in left:
        task.cancel()
    if left:
        await asyncio.wait(left, timeout=10)
    assert not left, f"{request.module.__name__} left {sorted(t.get_name() for t in left)} running"


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    base = os.environ["FRAUDSVC_TEST_DATABASE_URL"].rstrip("/")
    url = f"{base}/fraudsvc_test_{os.getpid()}_{secrets.token_hex(3)}"
    await migrate(Settings.from_env({"DATABASE_URL": url}).database)
    yield url
    await drop_database(url)


@pytest.fixture
async def clean_database(database_url: str) -> str:
    """The run's database with every table emptied (for tests that read whole tables)."""
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(TRUNCATE)
    finally:
        await connection.close()
    return database_url


@pytest.fixture(scope="session")
def registry_dir(tmp_path_factory: pytest.TempPathFactory, small_data: Path) -> Path:
    """A data folder whose MLflow store holds a trained champion (v1)."""
    data_dir = tmp_path_factory.mktemp("registry")
    settings = Settings.from_env({"FRAUDSVC_DATA_DIR": str(data_dir)})
    result = train(settings, TrainOptions(data=small_data, resampling="none", max_rounds=80))
    assert result.promotion.alias == "champion"
    return data_dir


@pytest.fixture
async def no_rules_after(database_url: str) -> AsyncIterator[None]:
    """Tests that publish rules or fill lists leave none live for the tests after them."""
    yield
    await clear_rules(database_url)


async def clear_rules(database_url: str) -> None:
    """No live ruleset and no list, as the tests that publish rules must leave the database."""
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute("DELETE FROM ruleset_live")
        await connection.execute("DELETE FROM lists")
    finally:
        await connection.close()
