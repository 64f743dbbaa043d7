"""An install of the previous version upgrades with `fraudsvc migrate` and nothing else.

The database is built by the real migrations up to the last one before time buckets and filled
the way that version stored history (amounts as floats, labels); `migrate` then converts the
amounts to exact minor units, builds every entity's buckets from the stored rows, says how long
that took, and the online features read from those buckets equal the batch path bit for bit.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import numpy as np
import polars as pl
import pytest
from loguru import logger
from piccolo.apps.migrations.commands.forwards import ForwardsMigrationManager

from fraudsvc.contract import load_contract_file
from fraudsvc.datagen import GeneratorConfig, generate
from fraudsvc.db import engine, queries
from fraudsvc.db.admin import drop_database, ensure_database, migrate
from fraudsvc.features import DECLARATION, batch_features, feature_matrix, online_vector
from fraudsvc.features.default import BASELINE
from fraudsvc.resources import open_database
from fraudsvc.settings import Settings
from tests.raw_windows import raw_spans
from tests.timeline import assert_same_vectors, transaction

BEFORE = "2026-11-25T00:31:32:075116"
"""The last migration of the version before time buckets."""
OLD = GeneratorConfig(customers=40, terminals=30, days=45, seed=9, fields="basic")


@pytest.fixture
async def old_database() -> AsyncIterator[str]:
    base = os.environ["FRAUDSVC_TEST_DATABASE_URL"].rstrip("/")
    url = f"{base}/fraudsvc_test_upgrade_{os.getpid()}_{secrets.token_hex(3)}"
    await ensure_database(url)
    engine.configure(Settings.from_env({"DATABASE_URL": url}).database)
    with contextlib.redirect_stdout(io.StringIO()):  # Piccolo's progress
        result = await ForwardsMigrationManager(app_name="fraudsvc", migration_id=BEFORE).run()
    assert result.success, result.message
    try:
        yield url
    finally:
        await drop_database(url)


async def store_the_old_way(connection: asyncpg.Connection, frame: pl.DataFrame) -> None:
    await connection.copy_records_to_table(
        "transactions",
        records=frame.select(
            "transaction_id",
            "timestamp",
            "customer_id",
            "terminal_id",
            "amount",
            pl.col("timestamp").alias("received_at"),
        ).iter_rows(),
        columns=["transaction_id", "ts", "customer_id", "terminal_id", "amount", "received_at"],
    )
    frauds = frame.filter(pl.col("is_fraud") == 1)["transaction_id"].to_list()
    await connection.executemany(
        "INSERT INTO labels VALUES ($1, true, 'chargeback', now(), now())",
        [(t,) for t in frauds],
    )


async def test_an_existing_database_upgrades_with_migrate_alone(
    old_database: str, tmp_path: Path
) -> None:
    frame = load_contract_file(generate(OLD, tmp_path / "old.parquet").path, True).frame
    said: list[str] = []
    sink = logger.add(lambda message: said.append(str(message)), level="INFO")
    connection = await asyncpg.connect(old_database)
    try:
        await store_the_old_way(connection, frame)
        await migrate(Settings.from_env({"DATABASE_URL": old_database}).database)
        minor = await connection.fetch(
            "SELECT transaction_id, amount_minor FROM transactions ORDER BY transaction_id"
        )
        read = queries.window_read(DECLARATION)
        async with open_database(Settings.from_env({"DATABASE_URL": old_database})):
            vectors = []
            for row in frame.iter_rows(named=True):
                tx = transaction(row)
                args, plan = read.params(tx)
                _, spans = read.values(await connection.fetch(read.sql, *args), plan)
                assert spans == await raw_spans(connection, DECLARATION, tx)
                vectors.append(online_vector(DECLARATION, tx, spans))
    finally:
        logger.remove(sink)
        await connection.close()

    expected_minor = dict(frame.select("transaction_id", "amount_minor").iter_rows())
    assert {r["transaction_id"]: r["amount_minor"] for r in minor} == expected_minor
    online = np.array(vectors)
    assert_same_vectors(online, feature_matrix(batch_features(frame)), DECLARATION.names)
    baseline = [DECLARATION.names.index(n) for n in BASELINE.names]
    assert not np.isnan(online[:, baseline]).any()  # old rows: five fields, full baseline
    for entity in DECLARATION.used_entities:  # each entity says what it built and how long
        line = next(m for m in said if f"feature buckets of {entity.name}: built" in m)
        assert line.rstrip().endswith(" s")
