"""Section `explain`: `fraudsvc worker` with its default process pool.

1. Throughput: explanations are requested through the API for stored predictions that have
   none (allowed transactions of the load), all at once; the time until the last is done gives
   explanations per second, and per LIME process.
2. Latency: scoring at a steady rate with the default policy (every flagged transaction is
   explained); for the explanations of that run, the time from the request (the score) to the
   explanation being ready, p50 and p95.
3. Where the worker's time goes: the explanation rows hold LIME's duration and, within it, the
   time spent in the model's own predictions.

Explanations left open by earlier sections (the http section runs without a worker) are removed
from this run's database and queue first, so that each measure sees only its own jobs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import statistics
import time
from dataclasses import dataclass, field

import asyncpg
import httpx

from tests.bench import procstat
from tests.bench.environment import Bench, BenchError
from tests.bench.lime_measure import describe
from tests.bench.load import Target, fraudsvc_target, pools_for, run_level
from tests.bench.report import Figure, Report

SECTION = "explain: fraudsvc worker (LIME in its process pool)"
POLL_SECONDS = 0.25
DRAIN_SECONDS = 600.0
STALL_SECONDS = 90.0


@dataclass(frozen=True)
class Done:
    rows: int
    open: int
    lags_s: list[float]
    """finished_at - requested_at of the done rows (seconds)."""
    duration_ms: list[float]
    predict_ms: list[float]


async def _purge(database_url: str, redis_url: str, queue: str, id_prefix: str) -> int:
    """Drop the open explanations of earlier sections: their rows, the queue, and the job keys
    (a job key left behind would make arq refuse a later job with the same id)."""
    import redis.asyncio as aioredis

    connection = await asyncpg.connect(database_url)
    try:
        status = await connection.execute(
            "DELETE FROM explanations WHERE status IN ('pending', 'running')"
        )
    finally:
        await connection.close()
    client = aioredis.Redis.from_url(redis_url)
    try:
        keys = [queue]
        keys += [k async for k in client.scan_iter(match=f"arq:*explain:{id_prefix}*", count=1000)]
        for start in range(0, len(keys), 500):
            await client.delete(*keys[start : start + 500])
    finally:
        await client.aclose()
    return int(status.split()[-1])


async def _candidates(database_url: str, n: int) -> list[str]:
    """Stored predictions without an explanation, newest first."""
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT p.transaction_id FROM predictions AS p "
            "LEFT JOIN explanations AS e USING (transaction_id) "
            "WHERE e.transaction_id IS NULL ORDER BY p.created_at DESC LIMIT $1",
            n,
        )
    finally:
        await connection.close()
    return [str(r["transaction_id"]) for r in rows]


async def _request(url: str, api_key: str, ids: list[str]) -> float:
    """POST .../explanation for every id (16 at a time); returns when the first was sent."""
    limits = httpx.Limits(max_connections=16)
    async with httpx.AsyncClient(
        base_url=url, headers={"X-API-Key": api_key}, limits=limits, timeout=30
    ) as client:
        gate = asyncio.Semaphore(16)

        async def one(tid: str) -> None:
            async with gate:
                response = await client.post(f"/v1/transactions/{tid}/explanation")
                if response.status_code not in (200, 202):
                    raise BenchError(
                        f"explanation request for {tid}: {response.status_code} {response.text}"
                    )

        started = time.perf_counter()
        await asyncio.gather(*(one(t) for t in ids))
    return started


async def _state(database_url: str, where: str, arg: object) -> Done:
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT status, extract(epoch FROM finished_at - requested_at) AS lag, "
            f"duration_ms, predict_ms FROM explanations WHERE {where}",
            arg,
        )
    finally:
        await connection.close()
    done = [r for r in rows if r["status"] == "done"]
    return Done(
        rows=len(rows),
        open=sum(1 for r in rows if r["status"] in ("pending", "running")),
        lags_s=[float(r["lag"]) for r in done],
        duration_ms=[float(r["duration_ms"]) for r in done],
        predict_ms=[float(r["predict_ms"]) for r in done],
    )


def _wait(database_url: str, where: str, arg: object, timeout: float) -> tuple[Done, float]:
    """Poll until nothing selected is open; returns the state and when that was seen. Gives up
    at `timeout`, or when nothing has finished for STALL_SECONDS."""
    started = time.monotonic()
    progress, last_open = started, -1
    while True:
        state = asyncio.run(_state(database_url, where, arg))
        if state.open == 0:
            return state, time.perf_counter()
        now = time.monotonic()
        if state.open != last_open:
            progress, last_open = now, state.open
        if now - started > timeout or now - progress > STALL_SECONDS:
            raise BenchError(
                f"{state.open} explanation(s) still open after {now - started:.0f} s "
                f"(none finished in the last {now - progress:.0f} s)"
            )
        time.sleep(POLL_SECONDS)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[min(len(ordered), rank) - 1]


@dataclass
class Throughput:
    rates: list[float] = field(default_factory=list)
    """Explanations per second, one value per round."""
    cpu_ms: list[float] = field(default_factory=list)
    """CPU milliseconds of the worker and its LIME processes per explanation, per round."""
    durations: list[float] = field(default_factory=list)
    predicts: list[float] = field(default_factory=list)


def worker_cpu(bench: Bench) -> float:
    worker = bench.web().worker
    if worker is None:
        return 0.0
    return procstat.total_cpu_seconds([worker.pid, *procstat.descendants(worker.pid)])


def throughput(bench: Bench, target: Target) -> Throughput:
    """`repeat` rounds: explanations requested at once for stored predictions without one;
    explanations per second from the first request to the last done, and the CPU the worker
    (with its LIME processes) used for them."""
    plan = bench.plan
    web = bench.web()
    out = Throughput()
    for r in range(plan.repeat):
        ids = asyncio.run(_candidates(web.database_url, plan.explain_requests))
        if len(ids) < plan.explain_requests:
            run_level(target, 200.0, plan.explain_requests / 150, -1)
            ids = asyncio.run(_candidates(web.database_url, plan.explain_requests))
        cpu = worker_cpu(bench)
        started = asyncio.run(_request(web.web_url, bench.api_key, ids))
        state, finished = _wait(web.database_url, "transaction_id = ANY($1)", ids, DRAIN_SECONDS)
        done = max(1, len(state.duration_ms))
        out.cpu_ms.append(1000 * (worker_cpu(bench) - cpu) / done)
        out.rates.append(len(state.duration_ms) / (finished - started))
        out.durations += state.duration_ms
        out.predicts += state.predict_ms
        print(
            f"    round {r + 1}: {len(ids)} explanations, {out.rates[-1]:.1f}/s, "
            f"{out.cpu_ms[-1]:.0f} ms CPU each",
            flush=True,
        )
    return out


def what_if(bench: Bench, report: Report) -> None:
    """The worker again with OpenBLAS held to one thread per process (OPENBLAS_NUM_THREADS=1,
    inherited by the LIME processes), same throughput measure."""
    shipped = report.data.get("worker", {})
    bench.stop_worker()
    bench.start_worker(OPENBLAS_NUM_THREADS="1")
    print("  what-if: worker with OPENBLAS_NUM_THREADS=1", flush=True)
    measured = throughput(bench, fraudsvc_target(bench, pools_for(bench)))
    rate = report.add(
        SECTION,
        Figure(
            "what-if OPENBLAS_NUM_THREADS=1: explanations per second",
            "1/s",
            measured.rates,
            "the same measure, the worker started with one BLAS thread per process",
        ),
    )
    cpu = report.add(
        SECTION,
        Figure(
            "what-if OPENBLAS_NUM_THREADS=1: worker CPU per explanation",
            "ms",
            measured.cpu_ms,
            "worker + LIME processes, from /proc",
        ),
    )
    if measured.durations:
        report.add(
            SECTION,
            Figure(
                "what-if OPENBLAS_NUM_THREADS=1: LIME time per explanation (median)",
                "ms",
                [statistics.median(measured.durations)],
                f"{len(measured.durations)} explanations",
            ),
        )
    if shipped.get("rates") and shipped.get("cpu_ms"):
        base_rate = statistics.median(shipped["rates"])
        base_cpu = statistics.median(shipped["cpu_ms"])
        report.note(
            SECTION,
            "What-if: with OpenBLAS held to one thread per process (OPENBLAS_NUM_THREADS=1 in "
            f"the worker's environment), the worker explains {rate.median:.1f}/s against "
            f"{base_rate:.1f}/s as shipped ({rate.median / base_rate:.2f}x) and uses "
            f"{cpu.median:.0f} ms of CPU per explanation against {base_cpu:.0f} ms "
            f"({cpu.median / base_cpu:.2f}x). Measured after the memory section, not "
            "interleaved with the shipped runs.",
        )


def run(bench: Bench, report: Report) -> None:
    plan = bench.plan
    web = bench.web()
    pools = pools_for(bench)
    target = fraudsvc_target(bench, pools)
    if not asyncio.run(_candidates(web.database_url, 1)):
        # nothing scored yet (the http section did not run): score some to explain
        run_level(target, 200.0, max(plan.warmup_seconds, plan.explain_requests / 150), -1)
    purged = asyncio.run(
        _purge(web.database_url, bench.settings.redis.url, bench.queue_name, bench.id_prefix)
    )
    worker = bench.start_worker()
    processes = bench.settings.explain.processes
    print(
        f"  worker up: {processes} LIME process(es), {bench.settings.worker.max_jobs} jobs at a "
        f"time, {describe(bench.settings.explain.lime)}, "
        f"{bench.settings.explain.lime.stability_seeds} stability seed(s); {purged} open "
        "explanation(s) of earlier sections dropped",
        flush=True,
    )
    measured = throughput(bench, target)
    rates, durations, predicts = measured.rates, measured.durations, measured.predicts
    report.add(
        SECTION,
        Figure(
            "explanations per second (worker)",
            "1/s",
            rates,
            f"{plan.explain_requests} requested at once per run; request to last done",
        ),
    )
    report.add(
        SECTION,
        Figure(
            "explanations per second per LIME process",
            "1/s",
            [r / processes for r in rates],
            f"{processes} LIME process(es) (FRAUDSVC_EXPLAIN_PROCESSES default: cores - 1)",
        ),
    )
    report.add(
        SECTION,
        Figure(
            "worker CPU per explanation",
            "ms",
            measured.cpu_ms,
            "worker + LIME processes (all threads), from /proc, per explanation done",
        ),
    )

    p50s: list[float] = []
    p95s: list[float] = []
    scoring_p50: list[float] = []
    scoring_p99: list[float] = []
    counts: list[int] = []
    achieved: list[float] = []
    for r in range(plan.repeat):
        before = pools.runs
        result = run_level(target, plan.explain_rate, plan.explain_load_seconds, r)
        assert pools.runs == before + 1
        prefix = pools.last_prefix
        state, _ = _wait(
            web.database_url,
            "transaction_id LIKE $1 AND reason = 'flagged'",
            prefix + "%",
            DRAIN_SECONDS,
        )
        if state.lags_s:
            p50s.append(1000 * percentile(state.lags_s, 50))
            p95s.append(1000 * percentile(state.lags_s, 95))
        counts.append(len(state.lags_s))
        durations += state.duration_ms
        predicts += state.predict_ms
        scoring_p50.append(result.result.p50_ms)
        scoring_p99.append(result.result.p99_ms)
        achieved.append(result.result.rate)
        print(
            f"    round {r + 1}: scoring {result.result.rate:.0f}/s, {len(state.lags_s)} "
            f"flagged explained, request to ready p50 {p50s[-1] if p50s else float('nan'):.0f} ms",
            flush=True,
        )
    load = (
        f"{plan.explain_rate:g} req/s scoring for {plan.explain_load_seconds:g} s, policy flagged"
    )
    report.add(
        SECTION,
        Figure(
            "request to explanation ready: p50",
            "ms",
            p50s,
            f"{load}; {sum(counts)} explanations ({statistics.median(counts):.0f} per run)",
        ),
    )
    report.add(SECTION, Figure("request to explanation ready: p95", "ms", p95s, load))
    report.add(
        SECTION,
        Figure(
            "scoring with the worker running: achieved",
            "req/s",
            achieved,
            f"target {plan.explain_rate:g}/s",
        ),
    )
    report.add(SECTION, Figure("scoring with the worker running: p50", "ms", scoring_p50))
    report.add(SECTION, Figure("scoring with the worker running: p99", "ms", scoring_p99))
    if durations:
        share = sum(predicts) / sum(durations)
        report.add(
            SECTION,
            Figure(
                "LIME time per explanation (median)",
                "ms",
                [statistics.median(durations)],
                f"{len(durations)} explanations, {describe(bench.settings.explain.lime)}, with "
                f"{bench.settings.explain.lime.stability_seeds} stability seed(s)",
            ),
        )
        report.add(
            SECTION,
            Figure(
                "share of LIME time in the model's predictions",
                "%",
                [100 * share],
                "sum(predict_ms) / sum(duration_ms) of the explanation rows; the rest is "
                "LIME's own work (sampling, discretising, distances, ridge fit)",
            ),
        )
    report.data["worker"] = {
        "rates": rates,
        "cpu_ms": measured.cpu_ms,
        "processes": processes,
        "max_jobs": bench.settings.worker.max_jobs,
        "lime": dataclasses.asdict(bench.settings.explain.lime),
        "purged_open_explanations": purged,
        "pid": worker.pid,
    }
    report.note(
        SECTION,
        "The worker runs as `fraudsvc worker` with the defaults: FRAUDSVC_EXPLAIN_PROCESSES = "
        f"cores - 1 = {processes} LIME process(es), FRAUDSVC_WORKER_MAX_JOBS = "
        f"{bench.settings.worker.max_jobs}, LIME: {describe(bench.settings.explain.lime)}, "
        f"{bench.settings.explain.lime.stability_seeds} stability seed(s) (each explanation "
        "runs LIME that many more times). Throughput: explanations requested through "
        "POST /v1/transactions/{id}/explanation for stored predictions without one, all at "
        "once, timed from the first request to the last row marked done (polled every "
        f"{POLL_SECONDS:g} s). Latency: finished_at - requested_at of the explanations the "
        "policy requested during the steady scoring run (requested_at is the scoring "
        "transaction's time), after the queue drained. The web process, the worker, its LIME "
        "process, PostgreSQL and wrk share the 2 cores.",
    )
