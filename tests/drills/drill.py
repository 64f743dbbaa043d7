"""One drill: a slice of transactions sent open loop at a fixed rate with a fault injected mid-load,
then every request's outcome held against the database."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import polars as pl

from tests.drills.load import Load, open_loop
from tests.drills.stack import API_KEY, Stack

RATE = 300.0  # requests per second during a drill (`--rate` for another)
LOAD_SECONDS = 20.0  # a drill's load, unless the drill says otherwise
PROBE = 40  # transactions sent slowly after a drill: did the service recover by itself?
FAULT_AT = 8.0  # seconds into the load
SETTLE_SECONDS = 120.0  # bound on waiting for explanations afterwards
SLACK_SECONDS = 1.0
"""Allowed beyond FRAUDSVC_DB_TIMEOUT_SECONDS for a 503 to reach the client: the event loop
and the client's own scheduling on a loaded machine (a 503 decided at the timeout still has to
be written and read)."""


@dataclass(frozen=True)
class Drill:
    """A fault and what the service may do while it lasts."""

    name: str
    fault: Callable[[], Awaitable[None]]
    allow_503: bool = False
    allow_unanswered: bool = False
    """Requests may get no HTTP answer at all (the web process is gone)."""
    hang_timeout: float | None = None
    """Requests sent while the fault lasts must end as 503 with a message within this (plus
    slack)."""
    fault_seconds: float = 0.0
    """How long the fault lasts once injected (for the window of `hang_timeout`)."""
    load_seconds: float = LOAD_SECONDS

    def transactions(self, rate: float) -> int:
        return round(rate * self.load_seconds)


@dataclass
class DrillResult:
    name: str
    sent: int = 0
    rate: float = 0.0
    late_ms: float = 0.0
    succeeded: int = 0
    refused_503: int = 0
    slowest_503_ms: float = 0.0
    slowest_in_fault_ms: float = 0.0
    """The slowest answer to a request sent while the fault lasted (hang drills)."""
    refused_before_fault: int = 0
    """503s to requests sent before the fault: the service could not keep up with the rate."""
    silent_503: int = 0
    unanswered: int = 0
    other_failures: dict[str, int] = field(default_factory=dict)
    stored: int = 0
    lost: int = 0
    """2xx answers whose transaction is not in the database."""
    stored_twice: int = 0
    stored_unanswered: int = 0
    """Stored although the client got no 2xx (the answer was lost with the process)."""
    half_written: int = 0
    owed_unrecorded: int = 0
    """Flagged (review or block) predictions with no explanation row."""
    explanations_expected: int = 0
    explanations_done: int = 0
    explanations_open: int = 0
    explanations_failed: int = 0
    explanations_rerun: int = 0
    duplicates: int = 0
    recovered: bool = True
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


async def _tally(
    connection: asyncpg.Connection, ids: list[str], owed: set[str], result: DrillResult
) -> set[str]:
    """Fill in the database's side of the result; returns the ids stored."""
    copies = await connection.fetch(
        "SELECT transaction_id, count(*) AS n FROM transactions "
        "WHERE transaction_id = ANY($1) GROUP BY transaction_id",
        ids,
    )
    result.stored = len(copies)
    result.stored_twice = sum(int(r["n"]) > 1 for r in copies)
    result.half_written = int(
        await connection.fetchval(
            "SELECT count(*) FROM transactions AS t WHERE t.transaction_id = ANY($1) "
            "AND NOT EXISTS (SELECT 1 FROM predictions AS p "
            "WHERE p.transaction_id = t.transaction_id)",
            ids,
        )
    )
    result.owed_unrecorded = int(
        await connection.fetchval(
            "SELECT count(*) FROM predictions AS p WHERE p.transaction_id = ANY($1) "
            "AND p.decision <> 'allow' AND NOT EXISTS (SELECT 1 FROM explanations AS e "
            "WHERE e.transaction_id = p.transaction_id)",
            ids,
        )
    )
    rows = await connection.fetch(
        "SELECT transaction_id, status, attempts FROM explanations WHERE transaction_id = ANY($1)",
        ids,
    )
    statuses = Counter(r["status"] for r in rows)
    result.duplicates = len(rows) - len({r["transaction_id"] for r in rows})
    result.explanations_expected = len(owed | {r["transaction_id"] for r in rows})
    result.explanations_done = statuses["done"]
    result.explanations_open = statuses["pending"] + statuses["running"]
    result.explanations_failed = statuses["failed"]
    result.explanations_rerun = sum((r["attempts"] or 0) > 1 for r in rows)
    return {r["transaction_id"] for r in copies}


async def _settle(stack: Stack, ids: list[str], owed: set[str], result: DrillResult) -> set[str]:
    """Count, and count again until no explanation is open (or SETTLE_SECONDS have passed);
    returns the ids stored."""
    deadline = time.monotonic() + SETTLE_SECONDS
    connection = await asyncpg.connect(stack.postgres.url)
    try:
        while True:
            stored = await _tally(connection, ids, owed, result)
            if result.explanations_open == 0 or time.monotonic() > deadline:
                return stored
            await asyncio.sleep(1.0)
    finally:
        await connection.close()


def keep_outcomes(load: Load, path: Path) -> None:
    """Every request of the drill, one line each (kept with the services' logs)."""
    with path.open("w") as out:
        out.write("sent_at_s\tseconds\tstatus\ttransaction_id\terror\n")
        for o in load.outcomes:
            out.write(
                f"{o.sent_at:.4f}\t{o.seconds:.4f}\t{o.status}\t{o.transaction_id}\t{o.error}\n"
            )


def _answers(load: Load, drill: Drill, result: DrillResult) -> None:
    result.sent = len(load.outcomes)
    result.rate = load.rate
    result.late_ms = load.late * 1000
    result.succeeded = len(load.with_status(200, 300))
    refused = [o for o in load.outcomes if o.status == 503]
    result.refused_503 = len(refused)
    result.slowest_503_ms = max((o.seconds for o in refused), default=0.0) * 1000
    result.silent_503 = sum(not o.error for o in refused)
    result.refused_before_fault = sum(o.sent_at < FAULT_AT for o in refused)
    if drill.fault_seconds:
        window = [o for o in load.outcomes if 0 <= o.sent_at - FAULT_AT <= drill.fault_seconds]
        result.slowest_in_fault_ms = max((o.seconds for o in window), default=0.0) * 1000
    result.unanswered = len(load.unanswered)
    others = Counter(
        str(o.status) for o in load.outcomes if o.status not in (None, 503) and o.status >= 300
    )
    result.other_failures = dict(others)


async def run_drill(
    stack: Stack, drill: Drill, rows: pl.DataFrame, probe: pl.DataFrame, rate: float
) -> DrillResult:
    result = DrillResult(name=drill.name)
    started = time.monotonic()

    async def inject() -> None:
        await asyncio.sleep(FAULT_AT)
        await drill.fault()

    injector = asyncio.create_task(inject())
    load = await open_loop(stack.url, API_KEY, rows, rate)
    await injector
    keep_outcomes(load, stack.root / f"{drill.name}.outcomes.log")
    _answers(load, drill, result)
    ids = [o.transaction_id for o in load.outcomes]
    acknowledged = {o.transaction_id for o in load.with_status(200, 300)}
    owed = {o.transaction_id for o in load.outcomes if o.explanation_owed}
    stored = await _settle(stack, ids, owed, result)
    result.lost = len(acknowledged - stored)
    result.stored_unanswered = len(stored - acknowledged)
    result.seconds = time.monotonic() - started
    # did the service recover by itself? a few more requests, slowly, after everything settled
    after = await open_loop(stack.url, API_KEY, probe, 20.0)
    result.recovered = len(after.with_status(201, 202)) == probe.height
    return result


def expect(result: DrillResult, drill: Drill) -> DrillResult:
    """The drill's promises; each one broken is a problem, and a problem fails the run."""
    problems = result.problems
    missing = result.explanations_expected - result.explanations_done
    if missing or result.explanations_open or result.explanations_failed:
        problems.append(
            f"{missing} explanation(s) not done ({result.explanations_open} open, "
            f"{result.explanations_failed} failed)"
        )
    if result.owed_unrecorded:
        problems.append(f"{result.owed_unrecorded} flagged transaction(s) without explanation")
    if result.duplicates:
        problems.append(f"{result.duplicates} duplicate explanation(s)")
    if result.half_written:
        problems.append(f"{result.half_written} transaction(s) stored without prediction")
    if result.lost:
        problems.append(f"{result.lost} transaction(s) answered 2xx but not stored")
    if result.stored_twice:
        problems.append(f"{result.stored_twice} transaction(s) stored twice")
    if result.other_failures:
        problems.append(f"requests failed otherwise: {result.other_failures}")
    if result.unanswered and not drill.allow_unanswered:
        problems.append(f"{result.unanswered} request(s) got no answer")
    if result.refused_503 and not drill.allow_503:
        problems.append(f"{result.refused_503} scoring request(s) refused")
    if result.silent_503:
        problems.append(f"{result.silent_503} 503(s) without a message")
    if drill.hang_timeout is not None:
        bound = (drill.hang_timeout + SLACK_SECONDS) * 1000
        if not result.refused_503:
            problems.append("no request was refused while PostgreSQL hung")
        if result.slowest_in_fault_ms > bound:
            problems.append(
                f"a request sent during the fault took {result.slowest_in_fault_ms:.0f} ms "
                f"(bound {bound:.0f} ms: the DB timeout {drill.hang_timeout:g} s plus "
                f"{SLACK_SECONDS:g} s)"
            )
    if not result.recovered:
        problems.append("the service did not recover without a restart")
    return result
