"""An install of the previous version upgrades with `fraudsvc migrate` and nothing else.

The database is built by the real migrations up to the last one before time buckets and filled
the way that version stored history (amounts as floats, labels); `migrate` then converts the
amounts to exact minor units, builds every entity's buckets from the stored rows, says how long
that took, and the online features read from those buckets equal the batch path bit for bit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import asyncpg
import numpy as np
import polars as pl
import pytest
from loguru import logger

from fraudsvc.contract import load_contract_file
from fraudsvc.datagen import GeneratorConfig, generate
from fraudsvc.db import queries
from fraudsvc.db.admin import migrate
from fraudsvc.features import DECLARATION, batch_features, feature_matrix, online_vector
from fraudsvc.features.default import BASELINE
from fraudsvc.resources import open_database
from fraudsvc.settings import Settings
from tests.migrated import database_at
from tests.raw_windows import raw_spans
from tests.timeline import assert_same_vectors, transaction

BEFORE = "2026-11-25T00:31:32:075116"
"""The last migration of the version before time buckets."""
OLD = GeneratorConfig(customers=40, terminals=30, days=45, seed=9, fields="basic")


@pytest.fixture
async def old_database() -> AsyncIterator[str]:
    async with database_at(BEFORE, "upgrade") as url:
        yield url


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


BEFORE_PARTITIONS = "2026-11-27T04:30:00:000000"
"""The last migration before the history was partitioned by month."""


@pytest.fixture
async def unpartitioned_database() -> AsyncIterator[str]:
    async with database_at(BEFORE_PARTITIONS, "upgrade") as url:
        yield url


async def test_an_unpartitioned_database_is_partitioned_in_place(
    unpartitioned_database: str, tmp_path: Path
) -> None:
    """Transactions with predictions, labels, explanations and review cases over several
    months: `migrate` moves every row into its month's partition, keeps every id unique through
    the key table, and the constraints, indexes and triggers work on the new tables."""
    world = GeneratorConfig(customers=20, terminals=15, days=75, seed=4)
    frame = load_contract_file(generate(world, tmp_path / "w.parquet").path, True).frame
    url = unpartitioned_database
    connection = await asyncpg.connect(url)
    try:
        await connection.copy_records_to_table(
            "transactions",
            records=frame.select(
                "transaction_id", "timestamp", "customer_id", "terminal_id", "amount_minor"
            ).iter_rows(),
            columns=["transaction_id", "ts", "customer_id", "terminal_id", "amount_minor"],
        )
        scored = frame["transaction_id"].to_list()[::3]
        await connection.executemany(
            "INSERT INTO predictions (transaction_id, score, decision, threshold_review, "
            "threshold_block, model_name, model_version, feature_hash, features, correlation_id, "
            "created_at, model_decision, decided_by) VALUES ($1, 0.7, 'review', 0.5, 0.9, 'm', "
            "'1', 'h', '{0.5}', 'c', now(), 'review', 'model')",
            [(t,) for t in scored],
        )
        await connection.executemany(
            "INSERT INTO explanations (transaction_id, status, reason, requested_at) "
            "VALUES ($1, 'pending', 'flagged', now())",
            [(t,) for t in scored[:50]],
        )
        await connection.executemany(
            "INSERT INTO review_cases (transaction_id) VALUES ($1)", [(t,) for t in scored[:40]]
        )
        frauds = frame.filter(pl.col("is_fraud") == 1)["transaction_id"].to_list()
        await connection.executemany(
            "INSERT INTO labels (transaction_id, is_fraud, source, labelled_at, updated_at) "
            "VALUES ($1, true, 'chargeback', now(), now())",
            [(t,) for t in frauds],
        )
        before = {
            t: await connection.fetchval(f"SELECT count(*) FROM {t}")
            for t in ("transactions", "predictions", "labels", "explanations", "review_cases")
        }
        await migrate(Settings.from_env({"DATABASE_URL": url}).database)

        after = {t: await connection.fetchval(f"SELECT count(*) FROM {t}") for t in before}
        assert after == before
        assert await connection.fetchval("SELECT count(*) FROM transaction_ids") == frame.height
        months = {
            m.strftime("transactions_p%Y%m")
            for m in frame["timestamp"].dt.truncate("1mo").unique().to_list()
        }
        placed = await connection.fetch(
            "SELECT tableoid::regclass::text AS part, count(*) AS n FROM transactions GROUP BY 1"
        )
        assert {r["part"] for r in placed} == months  # every row in its month, none in DEFAULT
        misplaced = await connection.fetchval(
            "SELECT count(*) FROM predictions AS p JOIN transactions AS t "
            "USING (transaction_id) WHERE p.ts <> t.ts"
        )
        assert misplaced == 0
        indexes = {
            r["indexname"]
            for r in await connection.fetch(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'transactions'"
            )
        }
        assert {"transactions_pkey", "transactions_customer_ts", "transactions_ts"} <= indexes

        # the triggers came along: transactions stay immutable, and buckets follow new rows
        with pytest.raises(asyncpg.exceptions.RestrictViolationError):
            await connection.execute("DELETE FROM transactions")
        # a stored id is refused even dated in another month; a new one is written
        first = transaction(next(frame.iter_rows(named=True)))
        args = list(queries.transaction_args(first))
        args[1] = first.timestamp + timedelta(days=40)
        rest = [0.1, "allow", 0.5, 0.9, "m", "1", "h", "{0.5}", None, "c", None, None, "allow"]
        rest += ["model", None, None, False]
        assert await connection.fetchval(queries.INSERT_SQL, *args, *rest) is None
        args[0] = "brand-new"
        buckets = await connection.fetchval("SELECT sum(n) FROM feature_buckets")
        assert await connection.fetchval(queries.INSERT_SQL, *args, *rest) is not None
        assert await connection.fetchval("SELECT sum(n) FROM feature_buckets") > buckets
        # labels, explanations and cases reference the key table now
        with pytest.raises(asyncpg.exceptions.ForeignKeyViolationError):
            await connection.execute(
                "INSERT INTO labels (transaction_id, is_fraud, source, labelled_at, updated_at) "
                "VALUES ('nobody', true, 'chargeback', now(), now())"
            )
    finally:
        await connection.close()
