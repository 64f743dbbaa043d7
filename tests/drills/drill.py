"""One drill: a slice of transactions replayed at a steady rate with a fault injected
mid-load, then the tally of what happened to every request and explanation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import asyncpg
import polars as pl

from fraudsvc.replay import ReplayOptions, ReplayReport, replay
from tests.drills.stack import API_KEY, Stack

RATE = 40.0  # requests per second during a drill
SLICE = 1_200  # transactions per drill: 30 s at RATE
FAULT_AT = 8.0  # seconds into the load
SETTLE_SECONDS = 120.0  # bound on waiting for explanations afterwards


@dataclass
class DrillResult:
    name: str
    sent: int = 0
    succeeded: int = 0
    refused_503: int = 0
    other_failures: dict[str, int] = field(default_factory=dict)
    explanations_expected: int = 0
    explanations_done: int = 0
    explanations_open: int = 0
    explanations_rerun: int = 0
    duplicates: int = 0
    half_written: int = 0
    recovered: bool = True
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


async def _query(url: str, sql: str, *args: object) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(url)
    try:
        return list(await connection.fetch(sql, *args))
    finally:
        await connection.close()


async def _tally(stack: Stack, ids: list[str], result: DrillResult) -> None:
    rows = await _query(
        stack.postgres.url,
        "SELECT t.transaction_id, p.transaction_id IS NOT NULL AS scored, e.status, e.attempts "
        "FROM transactions AS t LEFT JOIN predictions AS p USING (transaction_id) "
        "LEFT JOIN explanations AS e USING (transaction_id) WHERE t.transaction_id = ANY($1)",
        ids,
    )
    result.half_written = sum(not r["scored"] for r in rows)
    result.explanations_done = sum(r["status"] == "done" for r in rows)
    result.explanations_open = sum(r["status"] in ("pending", "running") for r in rows)
    result.explanations_rerun = sum((r["attempts"] or 0) > 1 for r in rows)
    counts = await _query(
        stack.postgres.url,
        "SELECT count(*) AS n, count(DISTINCT transaction_id) AS d FROM explanations "
        "WHERE transaction_id = ANY($1)",
        ids,
    )
    result.duplicates = int(counts[0]["n"]) - int(counts[0]["d"])


async def _settle(stack: Stack, ids: list[str], result: DrillResult) -> None:
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        await _tally(stack, ids, result)
        if result.explanations_open == 0 or time.monotonic() > deadline:
            return
        await asyncio.sleep(1.0)


async def run_drill(
    stack: Stack,
    name: str,
    rows: pl.DataFrame,
    frame: pl.DataFrame,
    fault: Callable[[], Awaitable[None]],
) -> DrillResult:
    result = DrillResult(name=name)
    started = time.monotonic()
    options = ReplayOptions(url=stack.url, api_key=API_KEY, rate=RATE, concurrency=8, timeout=10)
    first, last = rows["timestamp"].min(), rows["timestamp"].max()
    assert isinstance(first, datetime)
    assert isinstance(last, datetime)

    async def inject() -> None:
        await asyncio.sleep(FAULT_AT)
        await fault()

    load = asyncio.create_task(
        replay(frame, options, start=first, end=last + timedelta(microseconds=1))
    )
    injector = asyncio.create_task(inject())
    report: ReplayReport = await load
    await injector
    result.sent = report.sent
    result.succeeded = report.statuses.get(201, 0) + report.statuses.get(200, 0)
    result.refused_503 = report.statuses.get(503, 0)
    result.other_failures = {
        **{str(code): n for code, n in report.statuses.items() if code not in (200, 201, 503)},
        **dict(report.errors),
    }
    result.explanations_expected = report.explanations_pending
    ids = rows["transaction_id"].to_list()
    await _settle(stack, ids, result)
    result.seconds = time.monotonic() - started
    # did the service recover by itself? one more request after everything settled
    probe = frame.filter(pl.col("timestamp") > last).head(20)
    after = await replay(frame, options, start=probe["timestamp"].min(), limit=20)  # type: ignore[arg-type]
    result.recovered = after.statuses.get(201, 0) == after.sent == 20
    return result


def expect(result: DrillResult, *, allow_503: bool) -> DrillResult:
    if result.explanations_open or result.explanations_done < result.explanations_expected:
        result.problems.append(
            f"{result.explanations_expected - result.explanations_done} explanation(s) not done"
        )
    if result.duplicates:
        result.problems.append(f"{result.duplicates} duplicate explanation(s)")
    if result.half_written:
        result.problems.append(f"{result.half_written} transaction(s) stored without prediction")
    if result.other_failures:
        result.problems.append(f"requests failed otherwise: {result.other_failures}")
    if result.refused_503 and not allow_503:
        result.problems.append(f"{result.refused_503} scoring request(s) refused")
    if not result.recovered:
        result.problems.append("the service did not recover without a restart")
    return result
