"""`fraudsvc backfill`: import past transactions and known labels as history, without scoring.

A service adopted in production starts with history (the online features look 30 days back),
and the benchmark needs a database holding a million transactions. Going through the scoring
API would score what nobody asked to score and take half an hour, so history is copied in bulk
(COPY into a staging table, then INSERT ... ON CONFLICT DO NOTHING, so a rerun adds only what is
missing). Imported transactions have no prediction; the API says so.

Labels follow the label delay: with `until`, only frauds at least the delay older than `until`
are imported as labelled, because the others would not be known yet at that time; the replay
client posts the rest when they fall due. Without `until`, every label in the file is imported.

The transactions' monthly partitions are created first for every month in the file (see
`fraudsvc.db.partitions`), and each id's key is written with its transaction.

The feature buckets follow by themselves: the triggers on transactions and labels aggregate each
chunk per bucket in the same database transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
import polars as pl
from loguru import logger

from fraudsvc.db import partitions
from fraudsvc.db.engine import pool
from fraudsvc.db.queries import outage_guard
from fraudsvc.transaction import OPTIONAL_FIELDS

CHUNK_ROWS = 200_000
BULK_TIMEOUT = 3600.0
"""Seconds a chunk's statements may take (the pool's command timeout is meant for requests)."""
FRAME_COLUMNS = [
    "transaction_id",
    "timestamp",
    "customer_id",
    "terminal_id",
    "amount_minor",
    *OPTIONAL_FIELDS,
]
TABLE_COLUMNS = ["ts" if c == "timestamp" else c for c in FRAME_COLUMNS]
BACKFILL_SOURCE = "backfill"


@dataclass(frozen=True)
class BackfillResult:
    transactions: int
    labels: int
    skipped: int


async def backfill(
    frame: pl.DataFrame,
    until: datetime | None,
    label_delay: timedelta,
    ahead: int = partitions.DEFAULT_AHEAD,
) -> BackfillResult:
    """Import a contract frame (sorted, typed); returns what was new."""
    rows = frame if until is None else frame.filter(pl.col("timestamp") < until)
    labelled = rows.filter(pl.col("is_fraud") == 1) if "is_fraud" in rows.columns else rows.clear()
    if until is not None:
        labelled = labelled.filter(pl.col("timestamp") + label_delay <= until)
    new_tx = new_labels = 0
    async with outage_guard(), pool().acquire() as connection:
        if rows.height:
            # a month of its own for every month imported, so nothing lands in DEFAULT
            months = rows.select(pl.col("timestamp").dt.truncate("1mo").unique())
            await partitions.ensure(connection, ahead, months.to_series().to_list())
        for chunk in rows.iter_slices(CHUNK_ROWS):
            async with connection.transaction():
                await _bulk_session(connection)
                await connection.execute(
                    "CREATE TEMP TABLE import_tx (LIKE transactions INCLUDING DEFAULTS) "
                    "ON COMMIT DROP"
                )
                await connection.copy_records_to_table(
                    "import_tx",
                    records=chunk.select(FRAME_COLUMNS).iter_rows(),
                    columns=TABLE_COLUMNS,
                    timeout=BULK_TIMEOUT,
                )
                # the key first: only ids new to transaction_ids become transactions (an id
                # is unique across the monthly partitions only there)
                status = await connection.execute(
                    "WITH k AS (INSERT INTO transaction_ids (transaction_id, ts) "
                    "SELECT transaction_id, ts FROM import_tx ORDER BY transaction_id "
                    "ON CONFLICT (transaction_id) DO NOTHING RETURNING transaction_id) "
                    f"INSERT INTO transactions ({', '.join(TABLE_COLUMNS)}, received_at) "
                    f"SELECT {', '.join('i.' + c for c in TABLE_COLUMNS)}, now() "
                    "FROM import_tx AS i JOIN k USING (transaction_id)",
                    timeout=BULK_TIMEOUT,
                )
                new_tx += int(status.split()[-1])
        for chunk in labelled.iter_slices(CHUNK_ROWS):
            async with connection.transaction():
                await _bulk_session(connection)
                await connection.execute(
                    "CREATE TEMP TABLE import_labels (transaction_id varchar(64)) ON COMMIT DROP"
                )
                await connection.copy_records_to_table(
                    "import_labels",
                    records=((tid,) for tid in chunk["transaction_id"]),
                    columns=["transaction_id"],
                )
                status = await connection.execute(
                    "INSERT INTO labels "
                    "(transaction_id, is_fraud, source, labelled_at, updated_at) "
                    "SELECT i.transaction_id, true, $1, now(), now() FROM import_labels AS i "
                    "JOIN transactions AS t ON t.transaction_id = i.transaction_id "
                    "ON CONFLICT (transaction_id) DO NOTHING",
                    BACKFILL_SOURCE,
                    timeout=BULK_TIMEOUT,
                )
                new_labels += int(status.split()[-1])
        if new_tx or new_labels:
            await _vacuum(connection)
    return BackfillResult(transactions=new_tx, labels=new_labels, skipped=rows.height - new_tx)


async def _bulk_session(connection: asyncpg.Connection) -> None:
    """For this transaction only: room to aggregate a chunk's buckets in memory."""
    await connection.execute("SET LOCAL work_mem = '256MB'")


async def _vacuum(connection: asyncpg.Connection) -> None:
    """Fresh statistics and visibility map: the history query reads the covering indexes only
    when pages are all-visible (p99 of that query 3.1 ms before, 0.2 ms after, measured by
    make bench); autovacuum would get there, later."""
    try:
        await connection.execute(
            "VACUUM (ANALYZE) transaction_ids, transactions, labels, feature_buckets",
            timeout=BULK_TIMEOUT,
        )
    except asyncpg.exceptions.InsufficientPrivilegeError as exc:
        logger.warning("could not vacuum after the import ({}); autovacuum will", exc)
