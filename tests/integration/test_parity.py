"""Train/serve parity: a stream replayed through the HTTP API, in time order, with fraud labels
posted once the label delay has passed in the stream's own time, stores for every transaction
exactly the feature vector the batch (training) path computes for that row, bit for bit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import numpy as np
import polars as pl
import pytest

from fraudsvc.contract import load_contract_file
from fraudsvc.datagen import GeneratorConfig, generate
from fraudsvc.db.backfill import backfill
from fraudsvc.features import DECLARATION, batch_features, feature_matrix
from fraudsvc.replay import ReplayOptions, replay
from fraudsvc.settings import Settings
from tests.service import API_KEY, running_service, service_env
from tests.timeline import assert_same_vectors

LABEL_DELAY = timedelta(seconds=DECLARATION.label_delay)

pytestmark = pytest.mark.slow

# a dense little world: few terminals, many frauds, so labels and terminal risk matter a lot
STREAM = GeneratorConfig(
    customers=60,
    terminals=40,
    days=24,
    seed=5,
    compromised_terminal_rate=25,
    compromised_card_rate=40,
    card_testing_rate=25,
    large_amount_rate=15,
)


async def stored_vectors(database_url: str) -> dict[str, list[float]]:
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch("SELECT transaction_id, features FROM predictions")
    finally:
        await connection.close()
    return {r["transaction_id"]: list(r["features"]) for r in rows}


async def policy_rows(database_url: str) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(database_url)
    try:
        return list(
            await connection.fetch(
                "SELECT p.decision, p.reasons IS NOT NULL AS has_reasons, "
                "e.transaction_id IS NOT NULL AS has_explanation "
                "FROM predictions AS p LEFT JOIN explanations AS e USING (transaction_id)"
            )
        )
    finally:
        await connection.close()


def assert_parity(frame: pl.DataFrame, rows: pl.DataFrame, stored: dict[str, list[float]]) -> None:
    batch = batch_features(frame).join(rows.select("transaction_id"), on="transaction_id")
    assert batch.height == rows.height == len(stored)
    expected = feature_matrix(batch)
    online = np.array([stored[t] for t in batch["transaction_id"]])
    assert_same_vectors(online, expected, DECLARATION.names)


async def test_online_features_equal_batch_features_on_a_replayed_stream(
    registry_dir: Path, clean_database: str, tmp_path: Path
) -> None:
    frame = load_contract_file(generate(STREAM, tmp_path / "s.parquet").path, True).frame
    settings = Settings.from_env(service_env(registry_dir, clean_database))
    async with running_service(settings) as client:
        report = await replay(
            frame, ReplayOptions(url=str(client.base_url), api_key=API_KEY, concurrency=8)
        )
    last = frame["timestamp"].max()
    assert isinstance(last, datetime)
    due = frame.filter((pl.col("is_fraud") == 1) & (pl.col("timestamp") + LABEL_DELAY <= last))
    assert report.statuses == {201: frame.height}
    assert report.labels_posted == due.height > 100
    assert_parity(frame, frame, await stored_vectors(clean_database))

    # the default policy, seen on a whole stream: reasons and explanations for flagged only
    rows = await policy_rows(clean_database)
    flagged = [r for r in rows if r["decision"] != "allow"]
    assert flagged, "the stream should contain flagged transactions"
    assert all(r["has_reasons"] == (r["decision"] != "allow") for r in rows)
    assert all(r["has_explanation"] == (r["decision"] != "allow") for r in rows)


async def test_backfill_until_a_day_then_replay_from_it_keeps_parity(
    registry_dir: Path, clean_database: str, tmp_path: Path
) -> None:
    frame = load_contract_file(generate(STREAM, tmp_path / "s.parquet").path, True).frame
    cut = datetime(2026, 1, 16, tzinfo=UTC)
    settings = Settings.from_env(service_env(registry_dir, clean_database))
    async with running_service(settings) as client:
        imported = await backfill(frame, cut, LABEL_DELAY)
        again = await backfill(frame, cut, LABEL_DELAY)
        report = await replay(
            frame,
            ReplayOptions(url=str(client.base_url), api_key=API_KEY, concurrency=8),
            start=cut,
        )
    before = frame.filter(pl.col("timestamp") < cut)
    live = frame.filter(pl.col("timestamp") >= cut)
    late_labels = before.filter(
        (pl.col("is_fraud") == 1) & (pl.col("timestamp") + LABEL_DELAY > cut)
    )
    assert imported.transactions == before.height
    assert imported.labels == int(before["is_fraud"].sum()) - late_labels.height
    assert again.transactions == again.labels == 0
    assert report.statuses == {201: live.height}
    assert late_labels.height > 0
    assert_parity(frame, live, await stored_vectors(clean_database))
