"""`python -m tests.bench.online_path [--repeat N]`: the web process's pure-Python cost of the
online features per request (issue 15), without a database round trip.

Times `WindowRead.params` + `WindowRead.values` + `online_vector` for the default declaration on
realistic transactions (every field present, so every span is read; timestamps anywhere in a
day, with microseconds), and each part alone. The rows are what the window statement returns
for that plan (one per piece, plus the idempotency row), as asyncpg Records fetched once from
the machine's PostgreSQL (FRAUDSVC_BENCH_POSTGRES, default postgresql://postgres@127.0.0.1:5432)
so that unpacking costs what it costs in production; plain tuples when no server answers.
Prints the median over `repeat` runs of microseconds of CPU per transaction (process time: the
machine is shared, and waiting for a core is not the code's cost).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time
import timeit
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from fraudsvc.db.windows import WindowRead
from fraudsvc.features import DECLARATION, Declaration, online_vector
from fraudsvc.transaction import Transaction

ROWS_SQL = """SELECT * FROM unnest($1::int[], $2::int[], $3::int8[], $4::int8[], $5::int8[],
    $6::int8[]) AS u(kind, i, n, amount, frauds, latest)"""


def transactions(count: int, seed: int = 15) -> list[Transaction]:
    rng = random.Random(seed)
    start = datetime(2026, 3, 2, tzinfo=UTC)
    return [
        Transaction(
            transaction_id=f"tx-{i}",
            timestamp=start + timedelta(microseconds=rng.randrange(86_400 * 10**6)),
            customer_id=f"C{rng.randrange(10_000)}",
            terminal_id=f"T{rng.randrange(20_000)}",
            amount_minor=rng.randrange(1, 100_000),
            currency="EUR",
            merchant_category="5411",
            merchant_country="FR",
            card_country=rng.choice(["FR", "DE"]),
            channel="ecommerce",
            device_id=f"D{rng.randrange(1000)}",
            ip="10.0.0.1",
        )
        for i in range(count)
    ]


def row_values(decl: Declaration, args: list[Any], rng: random.Random) -> list[tuple[Any, ...]]:
    """One row per piece the arguments ask for (an empty piece has no latest), and the id's
    row: kind 0 the buckets ($2), kind k the raw pieces of the k-th entity (see windows.py)."""
    pieces = [(0, i) for i in args[1]]
    at = 7
    for kind, e in enumerate(decl.used_entities, start=1):
        pieces += [(kind, i) for i in args[at]]
        at += (4 if e.name in decl.deferred else 3) + len(e.fields)
    rows: list[tuple[Any, ...]] = []
    for kind, i in pieces:
        n = rng.choice([0, 0, 1, 3, 12])
        latest = rng.randrange(1_700_000_000 * 10**6, 1_800_000_000 * 10**6) if n else None
        rows.append((kind, i, n, n * rng.randrange(100, 10_000), rng.randrange(n + 1), latest))
    rows.append((-1, 0, 0, 0, 0, None))
    return rows


async def as_records(batches: list[list[tuple[Any, ...]]]) -> list[list[Any]]:
    url = os.environ.get("FRAUDSVC_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
    connection = await asyncpg.connect(url + "/postgres")
    try:
        out = []
        for rows in batches:
            columns = [list(c) for c in zip(*rows, strict=True)]
            out.append(list(await connection.fetch(ROWS_SQL, *columns)))
        return out
    finally:
        await connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.online_path")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--transactions", type=int, default=200)
    parser.add_argument("--tuples", action="store_true", help="plain tuples, not Records")
    options = parser.parse_args()
    decl = DECLARATION
    read = WindowRead(decl)
    txs = transactions(options.transactions)
    rng = random.Random(1)
    batches = [row_values(decl, read.params(tx)[0], rng) for tx in txs]
    rows: list[list[Any]] = list(batches)
    source = "tuples"
    if not options.tuples:
        try:
            rows = asyncio.run(as_records(batches))
            source = "asyncpg Records"
        except OSError as exc:
            print(f"no PostgreSQL ({exc}): plain tuples")
    plans = [read.params(tx) for tx in txs]
    spans = [read.values(r, p[1])[1] for r, p in zip(rows, plans, strict=True)]
    cases = list(zip(txs, rows, plans, spans, strict=True))

    def everything() -> None:
        for tx, r, _, _ in cases:
            _, plan = read.params(tx)
            _, values = read.values(r, plan)
            online_vector(decl, tx, values)

    def params() -> None:
        for tx, _, _, _ in cases:
            read.params(tx)

    def values() -> None:
        for _, r, (_, plan), _ in cases:
            read.values(r, plan)

    def vector() -> None:
        for tx, _, _, v in cases:
            online_vector(decl, tx, v)

    print(f"{len(txs)} transactions, rows as {source}; median of {options.repeat} runs, µs/tx")
    for name, fn in [
        ("all", everything),
        ("params", params),
        ("values", values),
        ("online_vector", vector),
    ]:
        number = 20
        runs = timeit.repeat(fn, number=number, repeat=options.repeat, timer=time.process_time)
        per_tx = [r / number / len(txs) * 1e6 for r in runs]
        print(f"  {name:14s} {statistics.median(per_tx):8.2f}  (min {min(per_tx):.2f})")


if __name__ == "__main__":
    main()
