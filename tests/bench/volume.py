"""Section `volume`: what an entity's volume costs a scoring request, and one hot merchant.

1. Heavy tail. A terminal whose 30-day window (the one ending a label delay back) holds 1,000,000
   transactions, against a quiet terminal holding about 40, both scored through the HTTP API in
   the same run, interleaved, at the same steady rate: p50 and p99 of each and their ratio.
   Targets: the busy terminal's p50 within 1.5x the quiet one's, its p99 within 2x.
2. One hot merchant. Every request of a 300 requests/s load pays at one terminal, dated now as
   live payments are: p50, p99 (target under 20 ms), errors (a deadlock would show as a 5xx);
   then the fold brings the terminal's buckets past the load, and they equal buckets rebuilt
   from its stored rows (no lost update). The terminal's buckets are deferred (its windows end a
   label delay back), so live writes do not queue on its bucket rows. For comparison, the same
   load dated in the past (a replay of history, which is bucketed as it is written) is measured
   too, without a target.

The busy terminal's history is imported with `fraudsvc backfill`'s code path (COPY, triggers);
its customers are 50,000 synthetic cards, 0.5 % of its payments labelled fraud.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path

import asyncpg
import numpy as np
import polars as pl

from fraudsvc.contract import check_frame
from fraudsvc.db import buckets
from fraudsvc.db.backfill import backfill
from fraudsvc.features import DECLARATION
from fraudsvc.resources import open_database
from tests.bench import wrk
from tests.bench.environment import Bench
from tests.bench.load import (
    Clock,
    LoadRun,
    Target,
    describe,
    median_of,
    pools_for,
    request_rows,
    run_level,
)
from tests.bench.report import Figure, Report

SECTION = "volume: an entity's volume and one hot merchant"
BUSY, QUIET, HOT = "T-VOLUME-BUSY", "T-VOLUME-QUIET", "T-VOLUME-HOT"
BUSY_ROWS = 1_000_000
QUIET_ROWS = 40
STEADY_RATE = 100.0
HOT_RATE = 300.0
TARGET_P50_RATIO = 1.5
TARGET_P99_RATIO = 2.0
TARGET_HOT_P99_MS = 20.0


def history(bench: Bench, rows: int) -> pl.DataFrame:
    """The busy and the quiet terminal's transactions, inside their delayed 30-day window."""
    rng = np.random.default_rng(17)
    end = bench.history_end - timedelta(seconds=DECLARATION.label_delay)
    span_us = 29 * 86_400 * 1_000_000  # a day of margin: the load's clock moves on
    start = end - timedelta(microseconds=span_us)

    def terminal(name: str, n: int, tag: str) -> pl.DataFrame:
        offsets = np.sort(rng.integers(0, span_us, size=n))
        return pl.DataFrame(
            {
                "transaction_id": [f"{bench.id_prefix}-{tag}-{i}" for i in range(n)],
                "timestamp": pl.Series(offsets).cast(pl.Duration("us")) + start,
                "customer_id": [f"VC{c:06d}" for c in rng.integers(0, 50_000, size=n)],
                "terminal_id": name,
                "amount": np.round(rng.lognormal(3.5, 1.0, size=n), 2),
                "is_fraud": (rng.random(n) < 0.005).astype(np.int8),
            }
        )

    frame = pl.concat([terminal(BUSY, rows, "busy"), terminal(QUIET, QUIET_ROWS, "quiet")])
    return check_frame(frame, "volume", require_labels=True).frame


def fixed_terminal_target(bench: Bench, terminal: str, live: bool = False) -> Target:
    """The scoring load of the other sections, every request paying at `terminal`; with
    `live`, dated now (a clock that starts at each run's start at the load's own rate)."""
    pools = pools_for(bench)
    pool = pools.directory / f"pool-{terminal}.lua"
    rows = request_rows(pools.sample)
    pool.write_text(wrk.score_pool([(c, terminal, a, more) for c, _, a, more in rows]))
    web = bench.web()

    def script(pacing: wrk.Pacing) -> Path:
        clock = Clock(time.time(), 1.0 / HOT_RATE) if live else None
        return pools.score_script(pacing, pool=pool, clock=clock)

    def finished(result: wrk.WrkResult, pacing: wrk.Pacing) -> None:
        if not live:
            pools.score_finished(result, pacing)

    return Target(
        name=f"{terminal} (live)" if live else terminal,
        url=web.web_url,
        script=script,
        finished=finished,
        server_pids=lambda: [web.web.pid],
        metrics_url=f"{web.web_url}/metrics",
        database_url=web.database_url,
    )


async def import_history(bench: Bench, frame: pl.DataFrame) -> float:
    started = time.perf_counter()
    async with open_database(bench.settings):
        await backfill(frame, None, timedelta(seconds=DECLARATION.label_delay))
    return time.perf_counter() - started


async def lost_updates(database_url: str, terminal: str) -> dict[str, int]:
    """The terminal's buckets, folded past the load, against a rebuild from its rows."""
    entity = DECLARATION.entity["terminal"]
    deferred = entity.name in DECLARATION.deferred
    rebuild = buckets.rebuild_sql(entity, DECLARATION.levels, up_to=deferred).replace(
        "FROM transactions AS t",
        f"FROM (SELECT * FROM transactions WHERE terminal_id = ${2 if deferred else 1}) AS t",
    )
    connection = await asyncpg.connect(database_url)
    try:
        last = await connection.fetchval(
            "SELECT max(ts) FROM transactions WHERE terminal_id = $1", terminal
        )
        await buckets.fold(connection, last)
        live = await connection.fetch(
            "SELECT width, start, n, amount, frauds, latest FROM feature_buckets "
            "WHERE entity = 'terminal' AND key = $1 ORDER BY 1, 2",
            terminal,
        )
        async with connection.transaction():
            await connection.execute(
                "CREATE TEMP TABLE fresh (LIKE feature_buckets INCLUDING ALL) ON COMMIT DROP"
            )
            horizon = await connection.fetchval(
                "SELECT horizon FROM feature_entities WHERE name = $1", entity.name
            )
            await connection.execute(
                rebuild.replace("INSERT INTO feature_buckets", "INSERT INTO fresh"),
                *((horizon,) if deferred else ()),
                terminal,
            )
            fresh = await connection.fetch(
                "SELECT width, start, n, amount, frauds, latest FROM fresh ORDER BY 1, 2"
            )
        stored = await connection.fetchval(
            "SELECT count(*) FROM transactions WHERE terminal_id = $1", terminal
        )
    finally:
        await connection.close()
    differing = len({tuple(r) for r in live} ^ {tuple(r) for r in fresh})
    return {"stored": int(stored), "buckets": len(live), "differing_buckets": differing}


def run(bench: Bench, report: Report) -> None:
    plan = bench.plan
    bench.web()  # the database with the run's history, and the service
    rows = BUSY_ROWS if not plan.quick else 100_000
    frame = history(bench, rows)
    print(f"  importing {frame.height:,} transactions of {BUSY} and {QUIET}", flush=True)
    seconds = asyncio.run(import_history(bench, frame))
    report.add(
        SECTION,
        Figure(
            "import of the busy terminal's history",
            "s",
            [seconds],
            f"{frame.height:,} rows through `fraudsvc backfill` (COPY; triggers build buckets)",
        ),
    )
    busy, quiet = fixed_terminal_target(bench, BUSY), fixed_terminal_target(bench, QUIET)
    runs: list[LoadRun] = []
    for r in range(plan.repeat):
        for target in (busy, quiet):
            result = run_level(target, STEADY_RATE, plan.load_seconds, r)
            print(describe(result), flush=True)
            runs.append(result)
    report.data["volume_runs"] = [r.as_json() for r in runs]
    _ratio_figures(report, runs, rows)

    hot, replayed = fixed_terminal_target(bench, HOT, live=True), fixed_terminal_target(bench, HOT)
    hot_runs: list[LoadRun] = []
    replay_runs: list[LoadRun] = []
    for r in range(plan.repeat):
        for target, kept in ((hot, hot_runs), (replayed, replay_runs)):
            result = run_level(target, HOT_RATE, plan.load_seconds, r)
            print(describe(result), flush=True)
            kept.append(result)
    report.data["hot_merchant_runs"] = [r.as_json() for r in hot_runs + replay_runs]
    check = asyncio.run(lost_updates(bench.web().database_url, HOT))
    report.data["hot_merchant_buckets"] = check
    _hot_figures(report, hot_runs, replay_runs, check)


def _ratio_figures(report: Report, runs: list[LoadRun], rows: int) -> None:
    def of(name: str) -> list[LoadRun]:
        return [r for r in runs if r.target == name]

    for name, label in ((BUSY, f"{rows:,} transactions"), (QUIET, f"{QUIET_ROWS} transactions")):
        for pct in ("p50", "p99"):
            report.add(
                SECTION,
                Figure(
                    f"terminal with {label} in its window: {pct}",
                    "ms",
                    [getattr(r.result, f"{pct}_ms") for r in of(name)],
                    f"{STEADY_RATE:g} requests/s through POST /v1/transactions",
                ),
            )
    p50 = median_of(of(BUSY), lambda r: r.result.p50_ms) / median_of(
        of(QUIET), lambda r: r.result.p50_ms
    )
    p99 = median_of(of(BUSY), lambda r: r.result.p99_ms) / median_of(
        of(QUIET), lambda r: r.result.p99_ms
    )
    report.add(SECTION, Figure("busy / quiet p50", "x", [p50], f"target <= {TARGET_P50_RATIO}"))
    report.add(SECTION, Figure("busy / quiet p99", "x", [p99], f"target <= {TARGET_P99_RATIO}"))
    report.verdict(
        f"a terminal with {rows:,} transactions in its window: p50 within "
        f"{TARGET_P50_RATIO}x and p99 within {TARGET_P99_RATIO}x of a quiet terminal's",
        f"p50 {p50:.2f}x, p99 {p99:.2f}x",
        p50 <= TARGET_P50_RATIO and p99 <= TARGET_P99_RATIO,
    )


def _hot_figures(
    report: Report, runs: list[LoadRun], replays: list[LoadRun], check: dict[str, int]
) -> None:
    p99s = [r.result.p99_ms for r in runs]
    errors = sum(r.result.errors for r in runs + replays)
    report.add(
        SECTION,
        Figure(
            "one hot merchant, replayed history: p99",
            "ms",
            [r.result.p99_ms for r in replays],
            "the same load dated in the past: late rows are bucketed as they are written, so "
            "every write updates the terminal's bucket rows (no target: history is imported "
            "with `fraudsvc backfill`, in bulk)",
        ),
    )
    report.add(SECTION, Figure("one hot merchant: p50", "ms", [r.result.p50_ms for r in runs], ""))
    report.add(
        SECTION,
        Figure(
            "one hot merchant: p99",
            "ms",
            p99s,
            f"{HOT_RATE:g} requests/s, every one at the same terminal; errors: {errors}; "
            f"{check['stored']:,} stored, {check['differing_buckets']} buckets differing from "
            "a rebuild",
        ),
    )
    report.verdict(
        f"one hot merchant at {HOT_RATE:g}/s: p99 under {TARGET_HOT_P99_MS:g} ms, no error, "
        "no lost update",
        f"worst p99 {max(p99s):.1f} ms, {errors} errors, "
        f"{check['differing_buckets']} buckets differ from a rebuild",
        max(p99s) < TARGET_HOT_P99_MS and errors == 0 and check["differing_buckets"] == 0,
    )
