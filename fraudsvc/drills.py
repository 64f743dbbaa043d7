"""`make drills`: faults under a steady scoring load, and what they cost.

Everything runs on 127.0.0.1 against a private PostgreSQL and a private Redis (the machine's
own are never touched), with real `fraudsvc web` and `fraudsvc worker` processes and every
scored transaction explained (FRAUDSVC_EXPLAIN=all, so explanations are in flight when the
fault hits). Each drill replays a fresh slice of transactions at a fixed rate, injects its
fault mid-load, waits (bounded) for the explanations, and counts:

- redis-restart: Redis stopped for a few seconds. No scoring request may fail; every
  explanation completes once Redis is back (the sweep enqueues what could not be).
- worker-kill: the worker's process group SIGKILLed mid-job, a new worker started. Every
  explanation completes exactly once.
- postgres-restart: PostgreSQL stopped for a few seconds. Requests meanwhile get 503 with a
  message; no transaction is stored without its prediction; the service recovers by itself.

The exit status is non-zero when a drill breaks its promise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import polars as pl

from fraudsvc.bench.stack import (
    PrivatePostgres,
    PrivateRedis,
    Service,
    fraudsvc,
    free_port,
    private_servers,
    wait_http,
)
from fraudsvc.contract import load_contract_file
from fraudsvc.datagen import GeneratorConfig, generate
from fraudsvc.replay import ReplayOptions, ReplayReport, replay
from fraudsvc.settings import Settings

API_KEY = "drill-key-" + os.urandom(6).hex()
RATE = 40.0  # requests per second during a drill
SLICE = 1_200  # transactions per drill: 30 s at RATE
FAULT_AT = 8.0  # seconds into the load
SETTLE_SECONDS = 120.0  # bound on waiting for explanations afterwards
# 60 days: 14 warm-up, 18 fit, 7 gap, 7 validation, 7 gap, 7 test; the last 5 are live traffic
WORLD = GeneratorConfig(customers=400, terminals=800, days=60, seed=21)
LIVE_FROM = datetime(2026, 2, 25, tzinfo=UTC)  # history before, drill traffic after
TRAIN = ["--resampling", "none", "--max-rounds", "80", "--warmup-days", "14"]
TRAIN += ["--valid-days", "7", "--test-days", "7"]


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


@dataclass
class Stack:
    root: Path
    postgres: PrivatePostgres
    redis: PrivateRedis
    env: dict[str, str]
    web: Service
    worker: Service
    url: str

    def start_worker(self) -> None:
        self.worker = Service("worker", fraudsvc("worker"), self.env, self.root / "worker.log")
        self.worker.start()


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


async def _drill(
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
    assert isinstance(first, datetime) and isinstance(last, datetime)

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


def _expect(result: DrillResult, *, allow_503: bool) -> DrillResult:
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


async def _prepare(
    root: Path, postgres: PrivatePostgres, redis: PrivateRedis
) -> tuple[Stack, pl.DataFrame]:
    print("preparing: data, migrations, model, history ...", flush=True)
    data = generate(WORLD, root / "world.parquet").path
    env = {
        **os.environ,
        "FRAUDSVC_DATA_DIR": str(root / "data"),
        "DATABASE_URL": postgres.url,
        "REDIS_URL": redis.url,
        "FRAUDSVC_QUEUE_NAME": "fraudsvc-drills",
        "FRAUDSVC_API_KEYS": API_KEY,
        "FRAUDSVC_PORT": str(free_port()),
        "FRAUDSVC_WORKER_METRICS_PORT": str(free_port()),
        "FRAUDSVC_EXPLAIN": "all",
        "FRAUDSVC_LIME_NUM_SAMPLES": "500",
        "FRAUDSVC_SWEEP_AFTER_SECONDS": "3",
        "FRAUDSVC_JOB_TIMEOUT_SECONDS": "5",
        "FRAUDSVC_DB_TIMEOUT_SECONDS": "2",
        "FRAUDSVC_RATE_LIMIT_PER_SECOND": "0",
        "FRAUDSVC_MODEL_POLL_SECONDS": "3600",
        "MLFLOW_AUC_THRESHOLD": "0.5",
        "LOG_LEVEL": "INFO",
    }
    for argv in (
        fraudsvc("migrate"),
        fraudsvc("train", "--data", str(data), *TRAIN),
        fraudsvc("backfill", str(data), "--until", LIVE_FROM.date().isoformat()),
    ):
        process = await asyncio.create_subprocess_exec(
            *argv, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
        _, err = await process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[2:4])} failed:\n{err.decode()[-2000:]}")
    url = f"http://127.0.0.1:{env['FRAUDSVC_PORT']}"
    web = Service("web", fraudsvc("web"), env, root / "web.log").start()
    stack = Stack(root, postgres, redis, env, web, web, url)
    stack.start_worker()
    wait_http(f"{url}/readyz", seconds=90)
    wait_http(f"http://127.0.0.1:{env['FRAUDSVC_WORKER_METRICS_PORT']}/healthz", seconds=90)
    frame = load_contract_file(data, require_labels=True).frame
    return stack, frame


async def run(selected: list[str]) -> list[DrillResult]:
    results: list[DrillResult] = []
    with (
        tempfile.TemporaryDirectory(prefix="fraudsvc-drills-") as tmp,
        private_servers("fraudsvc-drill-servers-") as (postgres, redis),
    ):
        stack, frame = await _prepare(Path(tmp), postgres, redis)
        live = frame.filter(pl.col("timestamp") >= LIVE_FROM)
        slices = iter(live.iter_slices(SLICE + 40))  # the 40 after a slice probe recovery
        try:

            async def restart_redis() -> None:
                redis.stop()
                await asyncio.sleep(4)
                redis.start()

            async def kill_worker() -> None:
                stack.worker.kill()
                await asyncio.sleep(2)
                stack.start_worker()

            async def restart_postgres() -> None:
                await asyncio.to_thread(postgres.stop, "fast")
                await asyncio.sleep(3)
                await asyncio.to_thread(postgres.start)

            drills = {
                "redis-restart": (restart_redis, False),
                "worker-kill": (kill_worker, False),
                "postgres-restart": (restart_postgres, True),
            }
            for name in selected:
                fault, allow_503 = drills[name]
                rows = next(slices).head(SLICE)
                print(f"drill {name}: {rows.height} transactions at {RATE:.0f}/s ...", flush=True)
                result = _expect(await _drill(stack, name, rows, frame, fault), allow_503=allow_503)
                print(_line(result), flush=True)
                results.append(result)
        finally:
            stack.web.stop()
            stack.worker.stop()
            kept = await asyncio.to_thread(_keep_logs, Path(tmp))
            print(f"service logs kept in {kept}", flush=True)
    return results


def _keep_logs(workdir: Path) -> Path:
    """The services' logs outlive the temporary folder: the evidence of a failed drill."""
    logs = Settings.from_env().paths.reports_dir / "drills-logs"
    logs.mkdir(parents=True, exist_ok=True)
    for log in workdir.glob("*.log"):
        shutil.copy(log, logs / log.name)
    return logs


def _line(r: DrillResult) -> str:
    verdict = "PASS" if r.passed else "FAIL: " + "; ".join(r.problems)
    return (
        f"  {r.name:<17} sent {r.sent:>5}  ok {r.succeeded:>5}  503 {r.refused_503:>4}  "
        f"explanations {r.explanations_done}/{r.explanations_expected} done, "
        f"{r.explanations_rerun} re-run, {r.duplicates} duplicate  "
        f"half-written {r.half_written}  recovered {'yes' if r.recovered else 'NO'}  "
        f"({r.seconds:.0f} s)  {verdict}"
    )


def write_report(results: list[DrillResult], directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "drills.json").write_text(
        json.dumps([asdict(r) | {"passed": r.passed} for r in results], indent=2)
    )
    lines = [
        "# fraudsvc fault drills",
        "",
        f"Run {datetime.now(UTC).isoformat(timespec='seconds')}: {RATE:.0f} requests/s, "
        f"fault {FAULT_AT:.0f} s into each load, every transaction explained.",
        "",
        "| drill | sent | succeeded | 503 | explanations done / expected | re-run | "
        "duplicates | half-written | recovered | verdict |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.name} | {r.sent} | {r.succeeded} | {r.refused_503} | "
            f"{r.explanations_done} / {r.explanations_expected} | {r.explanations_rerun} | "
            f"{r.duplicates} | {r.half_written} | {'yes' if r.recovered else 'no'} | "
            f"{'pass' if r.passed else '; '.join(r.problems)} |"
        )
    path = directory / "drills.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def main() -> int:
    names = ["redis-restart", "worker-kill", "postgres-restart"]
    parser = argparse.ArgumentParser(prog="python -m fraudsvc.drills", description=__doc__)
    parser.add_argument("--only", nargs="*", choices=names, help="run only these drills")
    args = parser.parse_args()
    from fraudsvc.telemetry.logs import setup_logging

    setup_logging("WARNING", "text")
    results = asyncio.run(run(args.only or names))
    report = write_report(results, Settings.from_env().paths.reports_dir)
    print(f"\n{report.read_text()}\nwritten to {report}")
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
