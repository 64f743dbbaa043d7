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
from tests.plain_online import pieces_of

ROWS_SQL = """SELECT * FROM unnest($1::int[], $2::int[], $3::int8[], $4::int8[], $5::int8[],
    $6::int8[]) AS u(kind, i, n, amount, frauds, latest)"""


PACES = {"live": 1 / 300, "paced": 10.4, "scattered": 0.0}
"""Seconds between transactions: live (300 a second, the web process's saturation), paced (the
HTTP bench's clock: 120 days of history over a million rows), scattered (random times in a day,
as a replay of old transactions: no two in the same minute, the worst case)."""


def transactions(count: int, pace: float, seed: int = 15) -> list[Transaction]:
    """Transactions of a realistic population: every field present, but a card-present third
    without a device or IP (their entities' spans are missing)."""
    rng = random.Random(seed)
    start = datetime(2026, 3, 2, tzinfo=UTC)
    out = []
    for i in range(count):
        if pace:
            at = start + timedelta(microseconds=round(i * pace * 1e6) + rng.randrange(1000))
        else:
            at = start + timedelta(microseconds=rng.randrange(86_400 * 10**6))
        present = rng.random() > 0.3
        out.append(
            Transaction(
                transaction_id=f"tx-{i}",
                timestamp=at,
                customer_id=f"C{rng.randrange(10_000)}",
                terminal_id=f"T{rng.randrange(20_000)}",
                amount_minor=rng.randrange(1, 100_000),
                currency="EUR",
                merchant_category=rng.choice(["5411", "5732", "5812"]),
                merchant_country="FR",
                card_country=rng.choice(["FR", "DE"]),
                channel="ecommerce" if present else "card_present",
                device_id=f"D{rng.randrange(1000)}" if present else None,
                ip="10.0.0.1" if present else None,
            )
        )
    return out


def row_values(decl: Declaration, args: list[Any], rng: random.Random) -> list[tuple[Any, ...]]:
    """One row per piece the arguments ask for (an empty piece has no latest), and the id's
    row: kind 0 the buckets ($2), kind k the raw pieces of the k-th entity (see windows.py)."""
    rows: list[tuple[Any, ...]] = []
    for kind, i in pieces_of(decl, args):
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
    parser.add_argument("--transactions", type=int, default=2000)
    parser.add_argument("--tuples", action="store_true", help="plain tuples, not Records")
    parser.add_argument("--pace", choices=sorted(PACES), action="append")
    options = parser.parse_args()
    decl = DECLARATION
    print(
        f"µs of CPU a transaction, median (min) of {options.repeat} runs over "
        f"{options.transactions} transactions, each run on a fresh WindowRead"
    )
    for pace in options.pace or list(PACES):
        measure(decl, pace, options.transactions, options.repeat, options.tuples)


def measure(decl: Declaration, pace: str, count: int, repeat: int, tuples: bool) -> None:
    read = WindowRead(decl)
    txs = transactions(count, PACES[pace])
    rng = random.Random(1)
    batches = [row_values(decl, read.plan.params(tx)[0], rng) for tx in txs]
    rows: list[list[Any]] = list(batches)
    source = "tuples"
    if not tuples:
        try:
            rows = asyncio.run(as_records(batches))
            source = "Records"
        except OSError as exc:
            print(f"no PostgreSQL ({exc}): plain tuples")
    plans = [read.params(tx) for tx in txs]
    spans = [read.values(r, p[1])[1] for r, p in zip(rows, plans, strict=True)]
    cases = list(zip(txs, rows, plans, spans, strict=True))
    fresh = [read]

    def setup() -> None:
        fresh[0] = WindowRead(decl)

    def everything() -> None:
        read = fresh[0]
        for tx, r, _, _ in cases:
            _, plan = read.params(tx)
            _, values = read.values(r, plan)
            online_vector(decl, tx, values)

    def params() -> None:
        read = fresh[0]
        for tx, _, _, _ in cases:
            read.params(tx)

    def values() -> None:
        for _, r, (_, plan), _ in cases:
            read.values(r, plan)

    def vector() -> None:
        for tx, _, _, v in cases:
            online_vector(decl, tx, v)

    figures = []
    for name, fn in [
        ("all", everything),
        ("params", params),
        ("values", values),
        ("online_vector", vector),
    ]:
        runs = timeit.repeat(fn, setup, number=1, repeat=repeat, timer=time.process_time)
        per_tx = [r / len(txs) * 1e6 for r in runs]
        figures.append(f"{name} {statistics.median(per_tx):6.1f} ({min(per_tx):.1f})")
    print(f"  {pace:9s} [{source}]  " + "  ".join(figures))


if __name__ == "__main__":
    main()
