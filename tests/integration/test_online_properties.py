"""The time buckets against the plain definition, on random timelines (hypothesis).

Each example writes a random timeline into PostgreSQL the way production does, in a random order
(late inserts: bulk imports and single inserts mixed), posts fraud labels and then corrects and
removes some, with timestamps crowding the windows' edges and the buckets' boundaries (a
microsecond either side of a minute, an hour, a day). The terminal's buckets are deferred: its
horizon starts before the timeline and the worker's fold moves it to random points between the
writes, so rows arrive above and below it, and labels land on folded and unfolded rows. Then,
for every transaction:
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
from tests.timeline import T0, assert_same_vectors, frame, payment_attributes, transaction

Drawn = list[tuple[int, str, str, float, int, dict[str, str | None]]]

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
        payment_attributes,
    ),
    min_size=1,
    max_size=30,
)
# corrections: (row index, what happens to its label once posted)
corrections = st.lists(
    st.tuples(st.integers(0, 29), st.sampled_from(["flip", "remove", "repeat"])), max_size=8
)
# folds: (after how many writes, the new horizon): often exactly at a row's timestamp, or a
# microsecond either side, where `<=` against `<` is decided
folds = st.lists(
    st.tuples(
        st.integers(0, 40),
        st.one_of(
            offsets_us.map(lambda us: ("at", us, 0)),
            st.tuples(st.just("row"), st.integers(0, 29), st.sampled_from([-1, 0, 1])),
        ),
    ),
    max_size=4,
)
Fold = tuple[int, tuple[str, int, int]]


def timeline(drawn: Drawn) -> pl.DataFrame:
    base = [
        (f"x{i:03d}", T0 + timedelta(microseconds=us), c, t, a, f)
        for i, (us, c, t, a, f, _) in enumerate(drawn)
    ]
    return frame(base, [dict(extra) for *_, extra in drawn])


async def write_like_production(
    connection: asyncpg.Connection,
    df: pl.DataFrame,
    fixes: list[tuple[int, str]],
    moves: list[Fold],
    seed: int,
) -> pl.DataFrame:
    """Insert in a random order, label, correct, fold between the writes; returns the frame
    with its final labels."""
    await connection.execute(
        "UPDATE feature_entities SET horizon = $1 WHERE horizon IS NOT NULL",
        T0 - timedelta(days=1),
    )
    schedule = sorted(moves)
    step = 0
    order = list(range(df.height))
    random.Random(seed).shuffle(order)
    half = len(order) // 2
    singles = order[half:] or order

    async def wrote() -> None:
        nonlocal step
        step += 1
        while schedule and schedule[0][0] <= step:
            _, (how, value, shift) = schedule.pop(0)
            # a row's own timestamp: mostly one written later, one at a time (a late row)
            at = df["timestamp"][singles[value % len(singles)]] if how == "row" else T0
            offset = timedelta(microseconds=shift if how == "row" else value)
            await buckets.fold(connection, at + offset)

    bulk = df[order[:half]]
    await backfill(bulk.with_columns(pl.lit(0, dtype=pl.Int8).alias("is_fraud")), None, timedelta())
    await wrote()
    for i in order[half:]:  # single inserts, later than the bulk, in shuffled time order
        row = df.row(i, named=True)
        await connection.execute(
            "WITH k AS (INSERT INTO transaction_ids VALUES ($1, $2)) "
            f"INSERT INTO transactions ({queries.TRANSACTION_COLUMNS}, received_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::jsonb, now())",
            *queries.transaction_args(transaction(row)),
        )
        await wrote()
    labels = dict.fromkeys(df.filter(pl.col("is_fraud") == 1)["transaction_id"].to_list(), True)
    for tid in labels:
        await queries.upsert_label(tid, True, "chargeback")
        await wrote()
    for index, what in fixes:
        await wrote()
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


async def check(
    database_url: str,
    df: pl.DataFrame,
    fixes: list[tuple[int, str]],
    moves: list[Fold],
) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(TRUNCATE)
        async with open_database(Settings.from_env({"DATABASE_URL": database_url})):
            final = await write_like_production(connection, df, fixes, moves, seed=df.height)
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
            if entity.name in DECLARATION.deferred:
                horizon = await connection.fetchval(
                    "SELECT horizon FROM feature_entities WHERE name = $1", entity.name
                )
                sql = buckets.rebuild_sql(entity, DECLARATION.levels, up_to=True)
                await connection.execute(sql, horizon)
            else:
                await connection.execute(buckets.rebuild_sql(entity, DECLARATION.levels))
        assert incremental == await bucket_table(connection)
    finally:
        await connection.close()


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(rows, corrections, folds)
def test_bucketed_windows_equal_the_raw_definition_and_the_batch_path(
    clean_database: str,
    drawn: Drawn,
    fixes: list[tuple[int, str]],
    moves: list[Fold],
) -> None:
    asyncio.run(check(clean_database, timeline(drawn), fixes, moves))


async def test_a_late_row_exactly_at_the_horizon_is_bucketed_once(clean_database: str) -> None:
    """The deferred buckets hold the rows at or before the horizon: one that arrives late at
    exactly the horizon is bucketed by its write, and the next fold does not add it again."""
    df = frame(
        [
            ("early", T0 - timedelta(hours=1), "C1", "T1", 1.0, 1),
            ("at", T0, "C2", "T1", 2.0, 0),
            ("after", T0 + timedelta(microseconds=1), "C3", "T1", 4.0, 0),
        ]
    )
    connection = await asyncpg.connect(clean_database)
    try:
        await connection.execute(TRUNCATE)
        await connection.execute(
            "UPDATE feature_entities SET horizon = $1 WHERE horizon IS NOT NULL",
            T0 - timedelta(days=1),
        )
        async with open_database(Settings.from_env({"DATABASE_URL": clean_database})):
            await backfill(df[[0]], None, timedelta())
            await buckets.fold(connection, T0)  # early folded, horizon = T0
            await backfill(df[[1, 2]], None, timedelta())  # "at" late, "after" above
            await buckets.fold(connection, T0 + timedelta(hours=1))
        day = await connection.fetchrow(
            "SELECT n, amount, frauds FROM feature_buckets "
            "WHERE entity = 'terminal' AND key = 'T1' AND width = 86400"
        )
    finally:
        await connection.close()
    assert tuple(day) == (3, 700, 1)
