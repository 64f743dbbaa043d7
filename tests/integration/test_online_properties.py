"""The time buckets against the plain definition, on random timelines (hypothesis).

Each example writes a random timeline into PostgreSQL the way production does, in a random order
(late inserts: bulk imports and single inserts mixed), posts fraud labels and then corrects and
removes some, with timestamps crowding the windows' edges and the buckets' boundaries (a
microsecond either side of a minute, an hour, a day). Then, for every transaction:
- the bucketed read (the production statement) equals the raw-row SQL oracle span by span,
- the online vector equals the batch path's on the same rows and final labels, bit for bit,
and the buckets maintained incrementally by the triggers equal buckets rebuilt from scratch.
"""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

import asyncpg
import numpy as np
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraudsvc.db import buckets, queries
from fraudsvc.db.backfill import backfill
from fraudsvc.features import DECLARATION, batch_features, feature_matrix, online_vector
from fraudsvc.resources import open_database
from fraudsvc.settings import Settings
from tests.raw_windows import TRUNCATE, raw_spans
from tests.timeline import T0, assert_same_vectors, frame, transaction

DAY, HOUR, MINUTE = 86_400, 3_600, 60
WINDOWS = [HOUR, DAY, 7 * DAY, 8 * DAY, 14 * DAY, 30 * DAY, 37 * DAY]
EDGES_US = sorted(
    {w * 1_000_000 + shift for w in [0, MINUTE, HOUR, DAY, *WINDOWS] for shift in (-1, 0, 1)}
)

offsets_us = st.one_of(
    st.sampled_from(EDGES_US),
    st.integers(min_value=0, max_value=40 * DAY * 1_000_000),
    st.integers(min_value=0, max_value=40 * DAY).map(lambda s: s * 1_000_000),
)
rows = st.lists(
    st.tuples(
        offsets_us,
        st.sampled_from(["C1", "C2", "C3"]),
        st.sampled_from(["T1", "T2"]),
        st.sampled_from([0.0, 0.01, 9.99, 10.0, 57.3, 250.0, 999_999.99]),
        st.sampled_from([0, 0, 0, 1]),
        st.sampled_from([None, "D1", "D2"]),
    ),
    min_size=1,
    max_size=30,
)
# corrections: (row index, what happens to its label once posted)
corrections = st.lists(
    st.tuples(st.integers(0, 29), st.sampled_from(["flip", "remove", "repeat"])), max_size=8
)


def timeline(drawn: list[tuple[int, str, str, float, int, str | None]]) -> pl.DataFrame:
    base = [
        (f"x{i:03d}", T0 + timedelta(microseconds=us), c, t, a, f)
        for i, (us, c, t, a, f, _) in enumerate(drawn)
    ]
    extra = [{"device_id": d, "channel": "ecommerce" if d else None} for *_, d in drawn]
    return frame(base, extra)


async def write_like_production(
    connection: asyncpg.Connection,
    df: pl.DataFrame,
    fixes: list[tuple[int, str]],
    seed: int,
) -> pl.DataFrame:
    """Insert in a random order, label, correct; returns the frame with its final labels."""
    order = list(range(df.height))
    random.Random(seed).shuffle(order)
    half = len(order) // 2
    bulk = df[order[:half]]
    await backfill(bulk.with_columns(pl.lit(0, dtype=pl.Int8).alias("is_fraud")), None, timedelta())
    for i in order[half:]:  # single inserts, later than the bulk, in shuffled time order
        row = df.row(i, named=True)
        await connection.execute(
            f"INSERT INTO transactions ({queries.TRANSACTION_COLUMNS}, received_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::jsonb, now())",
            *queries.transaction_args(transaction(row)),
        )
    labels = dict.fromkeys(df.filter(pl.col("is_fraud") == 1)["transaction_id"].to_list(), True)
    for tid in labels:
        await queries.upsert_label(tid, True, "chargeback")
    for index, what in fixes:
        tid = df["transaction_id"][index % df.height]
        if what == "flip":
            labels[tid] = not labels.get(tid, False)
            await queries.upsert_label(tid, labels[tid], "analyst")
        elif what == "remove":
            await connection.execute("DELETE FROM labels WHERE transaction_id = $1", tid)
            labels.pop(tid, None)
        else:
            await queries.upsert_label(tid, labels.get(tid, False), "analyst")
            labels.setdefault(tid, False)
    final = [int(labels.get(t, False)) for t in df["transaction_id"]]
    return df.with_columns(pl.Series("is_fraud", final, dtype=pl.Int8))


async def bucket_table(connection: asyncpg.Connection) -> list[tuple[object, ...]]:
    rows = await connection.fetch(
        "SELECT entity, key, width, start, n, amount, frauds, latest FROM feature_buckets "
        "WHERE n > 0 ORDER BY 1, 2, 3, 4"
    )
    return [tuple(r) for r in rows]


async def check(database_url: str, df: pl.DataFrame, fixes: list[tuple[int, str]]) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(TRUNCATE)
        async with open_database(Settings.from_env({"DATABASE_URL": database_url})):
            final = await write_like_production(connection, df, fixes, seed=df.height)
            read = queries.window_read(DECLARATION)
            online = []
            for row in final.iter_rows(named=True):
                tx = transaction(row)
                args, plan = read.params(tx)
                exists, spans = read.values(await connection.fetch(read.sql, *args), plan)
                assert exists
                assert spans == await raw_spans(connection, DECLARATION, tx), row
                online.append(online_vector(DECLARATION, tx, spans))
        expected = feature_matrix(batch_features(final))
        assert_same_vectors(np.array(online), expected, DECLARATION.names)

        incremental = await bucket_table(connection)
        await connection.execute("TRUNCATE feature_buckets")
        for entity in DECLARATION.used_entities:
            await connection.execute(buckets.rebuild_sql(entity, DECLARATION.levels))
        assert incremental == await bucket_table(connection)
    finally:
        await connection.close()


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(rows, corrections)
def test_bucketed_windows_equal_the_raw_definition_and_the_batch_path(
    clean_database: str,
    drawn: list[tuple[int, str, str, float, int, str | None]],
    fixes: list[tuple[int, str]],
) -> None:
    asyncio.run(check(clean_database, timeline(drawn), fixes))
