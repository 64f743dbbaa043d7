"""Monthly partitions of the history: transactions and predictions, by the transaction's time.

Both tables are RANGE-partitioned on the transaction's timestamp (`ts`; a prediction carries its
transaction's), one partition per calendar month (UTC) named `<table>_pYYYYMM`, plus a DEFAULT
partition each. Retention drops whole months (`fraudsvc.db.retention`), which costs a catalogue
change instead of a DELETE of millions of rows, and leaves no dead tuples behind.

Why a DEFAULT partition: a transaction dated outside every created month (a backfill of old
history, a clock far ahead, a partition the worker has not created yet because it was down for
months) must never be refused: the scoring write is one statement and cannot create a
partition. It lands in DEFAULT, and `ensure()` (run by `fraudsvc migrate`, by `fraudsvc
backfill` for the months it imports, and by the worker daily) gives each month found there its
own partition, moving its rows out of DEFAULT first (PostgreSQL refuses to create a partition
whose range holds rows of the default one). Rows are moved with direct inserts into the new
partitions, which fire no statement trigger of the parents, so the feature buckets, which
already count them, are not counted twice. Months more than `ahead` months in the future stay
in DEFAULT until their time comes, so a bogus far-future date creates no partition.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime

import asyncpg

PARTITIONED = ("transactions", "predictions")
"""In this order: a prediction references its transaction (both partitioned by `ts`)."""
PARTITION_LOCK = 0x6672617564 + 2  # pg_advisory_xact_lock key: one partition change at a time
MONTH_NAME = re.compile(r"_p(\d{4})(\d{2})$")
DEFAULT_AHEAD = 1
"""Months after the current one given partitions ahead of time (FRAUDSVC_PARTITIONS_AHEAD)."""
LOCK_WAIT = "2s"
"""Creating or dropping a partition takes a short exclusive lock on the parent: wait at most
this long (writes queue behind a waiting lock, so the wait is a pause of scoring), then give up
(the next run tries again)."""


def month_of(moment: datetime | date) -> date:
    if isinstance(moment, datetime):
        moment = moment.astimezone(UTC).date() if moment.tzinfo else moment.date()
    return date(moment.year, moment.month, 1)


def add_months(month: date, n: int) -> date:
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def months_between(first: date, last: date) -> list[date]:
    out = []
    month = month_of(first)
    while month <= month_of(last):
        out.append(month)
        month = add_months(month, 1)
    return out


def partition_name(table: str, month: date) -> str:
    return f"{table}_p{month.year:04d}{month.month:02d}"


def bounds_sql(month: date) -> str:
    """The partition's range in UTC: [first of the month, first of the next)."""
    return (
        f"FROM ('{month.isoformat()} 00:00:00+00') "
        f"TO ('{add_months(month, 1).isoformat()} 00:00:00+00')"
    )


@dataclass(frozen=True)
class Partition:
    table: str
    name: str
    month: date  # date.min for the DEFAULT partition

    @property
    def upper(self) -> datetime:
        return datetime.combine(add_months(self.month, 1), datetime.min.time(), UTC)


async def partitions(connection: asyncpg.Connection, table: str) -> list[Partition]:
    """The monthly partitions of `table`, oldest first (the DEFAULT one excluded)."""
    rows = await connection.fetch(
        "SELECT c.relname FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = $1::regclass",
        table,
    )
    out = []
    for row in rows:
        found = MONTH_NAME.search(row["relname"])
        if found:
            month = date(int(found.group(1)), int(found.group(2)), 1)
            out.append(Partition(table, row["relname"], month))
    return sorted(out, key=lambda p: p.month)


async def default_months(connection: asyncpg.Connection) -> list[date]:
    """The months that have rows in the transactions' DEFAULT partition."""
    rows = await connection.fetch(
        "SELECT DISTINCT date_trunc('month', ts AT TIME ZONE 'UTC')::date AS month "
        "FROM transactions_default ORDER BY 1"
    )
    return [r["month"] for r in rows]


@dataclass(frozen=True)
class Created:
    month: date
    moved: int  # transactions moved out of DEFAULT into it


async def ensure(
    connection: asyncpg.Connection,
    ahead: int,
    months: Iterable[date] = (),
    now: datetime | None = None,
) -> list[Created]:
    """Create the monthly partitions of this month and the `ahead` next ones, of `months`, of
    every month with rows in DEFAULT that is not beyond them, and, after an import (`months`),
    of every month from its oldest to the last: no gap, so a replay or a late
    batch dated in a quiet month lands in its own partition rather than in DEFAULT, where its
    rows would sit outside the monthly indexes the scoring read's plan was made for. Returns
    those created."""
    current = month_of(now or datetime.now(UTC))
    last = add_months(current, ahead)
    wanted = set(months_between(current, last)) | {month_of(m) for m in months}
    wanted |= {m for m in await default_months(connection) if m <= last}
    have = {p.month for p in await partitions(connection, "transactions")}
    if months:  # an import: its months through now, so later traffic finds no gap
        wanted |= set(months_between(min(month_of(m) for m in months), last))
    created = []
    for month in sorted(wanted - have):
        async with connection.transaction():
            await connection.execute(f"SET LOCAL lock_timeout = '{LOCK_WAIT}'")
            await connection.execute("SELECT pg_advisory_xact_lock($1)", PARTITION_LOCK)
            if month in {p.month for p in await partitions(connection, "transactions")}:
                continue  # another worker made it meanwhile
            moved = await _create(connection, month)
        created.append(Created(month, moved))
    return created


async def _create(connection: asyncpg.Connection, month: date) -> int:
    """One month's partitions of both tables, taking its rows out of DEFAULT first."""
    lo = datetime.combine(month, datetime.min.time(), UTC)
    hi = datetime.combine(add_months(month, 1), datetime.min.time(), UTC)
    moved = 0
    for table in reversed(PARTITIONED):  # predictions first: they reference transactions
        held = f"moving_{table}"
        await connection.execute(f"CREATE TEMP TABLE {held} (LIKE {table}) ON COMMIT DROP")
        status = await connection.execute(
            f"WITH gone AS (DELETE FROM {table}_default WHERE ts >= $1 AND ts < $2 RETURNING *) "
            f"INSERT INTO {held} SELECT * FROM gone",
            lo,
            hi,
        )
        if table == "transactions":
            moved = int(status.split()[-1])
    for table in PARTITIONED:
        name = partition_name(table, month)
        await connection.execute(
            f"CREATE TABLE {name} PARTITION OF {table} FOR VALUES {bounds_sql(month)}"
        )
        await connection.execute(f"INSERT INTO {name} SELECT * FROM moving_{table}")
    return moved
