"""Adding a window aggregate over a new key is a change to the declaration alone.

The test declares what no code knows about, a customer-and-channel entity with two windows, on a
database that already holds history, and runs `fraudsvc migrate` (as an upgrade would): the new
entity's buckets are built from the stored rows, the triggers maintain them for new rows, and the
online values equal the batch path and the raw definition bit for bit.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import msgspec
import numpy as np
import polars as pl
import pytest

from fraudsvc.db import queries
from fraudsvc.db.admin import drop_database, migrate
from fraudsvc.db.backfill import backfill
from fraudsvc.features import (
    DECLARATION,
    Declaration,
    batch_features,
    feature_matrix,
    online_vector,
)
from fraudsvc.features.declaration import DAY, Entity, Window
from fraudsvc.resources import open_database
from fraudsvc.settings import Settings
from tests.raw_windows import raw_spans
from tests.timeline import T0, assert_same_vectors, frame, transaction

WITH_CHANNEL = msgspec.structs.replace(
    DECLARATION,
    entities=(*DECLARATION.entities, Entity("customer_channel", ("customer_id", "channel"))),
    features=(
        *DECLARATION.features,
        Window("customer_channel_nb_tx_7d", "customer_channel", "count", 7 * DAY),
        Window("customer_channel_mean_amount_7d", "customer_channel", "amount_mean", 7 * DAY),
    ),
)
CHANNELS = ["ecommerce", "card_present", "contactless", None]


@pytest.fixture
async def own_database() -> AsyncIterator[str]:
    base = os.environ["FRAUDSVC_TEST_DATABASE_URL"].rstrip("/")
    url = f"{base}/fraudsvc_decl_{os.getpid()}_{secrets.token_hex(3)}"
    yield url
    await drop_database(url)


def history(n: int, seed: int, prefix: str) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    seconds = np.sort(rng.integers(0, 20 * 86_400, size=n))
    rows = [
        (
            f"{prefix}{i}",
            T0 + timedelta(seconds=int(s)),
            f"C{rng.integers(0, 4)}",
            f"T{rng.integers(0, 3)}",
            float(rng.integers(0, 50_000)) / 100,
            int(rng.random() < 0.1),
        )
        for i, s in enumerate(seconds)
    ]
    extra = [{"channel": CHANNELS[rng.integers(0, 4)]} for _ in rows]
    return frame(rows, extra)


async def test_a_window_over_a_new_key_needs_the_declaration_alone(own_database: str) -> None:
    assert WITH_CHANNEL.problems() == []
    settings = Settings.from_env({"DATABASE_URL": own_database})
    await migrate(settings.database)  # the code's declaration: no such entity yet
    old, new = history(300, 1, "old"), history(200, 2, "new")
    new = new.with_columns(pl.col("timestamp") + timedelta(days=20))
    async with open_database(settings):
        await backfill(old, None, timedelta(seconds=DECLARATION.label_delay))
    await migrate(settings.database, declaration=WITH_CHANNEL)  # the upgrade
    async with open_database(settings):
        await backfill(new, None, timedelta(seconds=DECLARATION.label_delay))
        assert await queries.missing_bucket_entities(WITH_CHANNEL) == []
        both = pl.concat([old, new]).sort("timestamp", "transaction_id")
        read = queries.window_read(WITH_CHANNEL)
        connection = await asyncpg.connect(own_database)
        try:
            vectors = []
            for row in both.iter_rows(named=True):
                tx = transaction(row)
                args, plan = read.params(tx)
                _, spans = read.values(await connection.fetch(read.sql, *args), plan)
                assert spans == await raw_spans(connection, WITH_CHANNEL, tx)
                vectors.append(online_vector(WITH_CHANNEL, tx, spans))
        finally:
            await connection.close()
    expected = feature_matrix(batch_features(both, WITH_CHANNEL), WITH_CHANNEL)
    assert_same_vectors(np.array(vectors), expected, WITH_CHANNEL.names)
    channel_counts = expected[:, WITH_CHANNEL.names.index("customer_channel_nb_tx_7d")]
    assert np.isnan(channel_counts).any()
    assert (channel_counts > 1).any()


async def test_a_declaration_whose_buckets_are_not_kept_is_named(database_url: str) -> None:
    async with open_database(Settings.from_env({"DATABASE_URL": database_url})):
        missing = await queries.missing_bucket_entities(WITH_CHANNEL)
    assert missing == ["customer_channel"]
    assert isinstance(WITH_CHANNEL, Declaration)
