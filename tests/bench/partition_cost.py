"""What the monthly partitions cost the scoring path: its two statements alone, timed.

`python -m tests.bench.partition_cost DATABASE_URL` creates that database, migrates it, writes
PRELOAD transactions with predictions through the scoring write itself over 13 months (the
worker's partitions then exist for each of them), and times WRITES more scoring writes and
READS window reads at the end of that history, as the web process runs them: prepared, generic
plans, one round trip each. It prints the medians and one EXPLAIN ANALYZE of each statement,
then drops the database. Run the same file from a checkout before partitioning (the code it
imports is that checkout's) to compare; it is not part of `make bench` (it needs its own
database and several minutes).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta

import asyncpg

from fraudsvc.db import queries
from fraudsvc.db.admin import drop_database, migrate
from fraudsvc.db.literals import float_array
from fraudsvc.features import DECLARATION
from fraudsvc.settings import Settings
from fraudsvc.transaction import Transaction

PRELOAD = 20_000
WRITES = 4_000
READS = 4_000
SPAN = timedelta(days=390)
FEATURES = [0.5] * len(DECLARATION.names)


def write_args(i: int, when: datetime, prefix: str) -> list[object]:
    tx = Transaction(f"{prefix}{i:08d}", when, f"C{i % 997}", f"T{i % 1999}", 1234 + i)
    prediction: list[object] = [
        0.1,
        "allow",
        0.5,
        0.9,
        "m",
        "1",
        "h" * 64,
        float_array(FEATURES),
        None,
    ]
    prediction += ["corr", None, None, "allow", "model", None, None, False]
    return [*queries.transaction_args(tx), *prediction]


def summary(name: str, times: list[float]) -> str:
    times = sorted(times)
    median, p99 = times[len(times) // 2], times[int(len(times) * 0.99)]
    return (
        f"{len(times)} {name}: median {median * 1e3:.3f} ms, "
        f"mean {statistics.fmean(times) * 1e3:.3f} ms, p99 {p99 * 1e3:.3f} ms"
    )


async def measure(url: str) -> None:
    await migrate(Settings.from_env({"DATABASE_URL": url}).database)
    connection = await asyncpg.connect(
        url, server_settings={"plan_cache_mode": "force_generic_plan"}
    )
    try:
        start = datetime.now(UTC) - SPAN
        step = SPAN / PRELOAD
        write = await connection.prepare(queries.INSERT_SQL)
        for i in range(PRELOAD):
            await write.fetchval(*write_args(i, start + i * step, "pre"))
        try:  # the worker's daily step, where this checkout has it
            from fraudsvc.db import partitions

            await partitions.ensure(connection, 1)
        except ImportError:
            pass
        await connection.execute("VACUUM ANALYZE")
        parts = await connection.fetchval(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'transactions'::regclass"
        )
        print(f"{PRELOAD:,} transactions over {SPAN.days} days, {parts} partitions of transactions")
        end = start + SPAN
        writes = []
        for i in range(WRITES):
            args = write_args(i, end + i * step / 10, "new")
            t0 = time.perf_counter()
            assert await write.fetchval(*args) is not None
            writes.append(time.perf_counter() - t0)
        read = queries.window_read(DECLARATION)
        statement = await connection.prepare(read.sql)
        reads = []
        for i in range(READS):
            tx = Transaction(f"q{i}", end + timedelta(seconds=i), f"C{i % 997}", f"T{i % 1999}", 1)
            args, _ = read.params(tx)
            t0 = time.perf_counter()
            await statement.fetch(*args)
            reads.append(time.perf_counter() - t0)
        print(summary("scoring writes", writes))
        print(summary("window reads", reads))
        for sql, args in (
            (queries.INSERT_SQL, write_args(0, end, "explained")),
            (read.sql, read.params(Transaction("x", end, "C5", "T5", 1))[0]),
        ):
            plan = await connection.fetch("EXPLAIN (ANALYZE, COSTS OFF) " + sql, *args)
            print("\n".join(r[0] for r in plan if "Time" in r[0] or "Trigger" in r[0]))
    finally:
        await connection.close()
        await drop_database(url)


if __name__ == "__main__":
    asyncio.run(measure(sys.argv[1]))
