"""HTTP load with wrk against `fraudsvc web` and `mlflow models serve`, side by side.

fraudsvc gets new transactions: unique ids, (customer, terminal, amount) drawn from the last 30
days of the backfilled history, timestamps on a clock that starts just after the history and
advances at the history's own pace (its span over its rows), so every window holds realistic
history. MLflow gets real feature rows of the same transactions, precomputed by the batch path,
as `dataframe_split` JSON. Both are loaded by the same wrk at the same rates, one run after the
other, repeated; each run also records the CPU time the server, PostgreSQL's backends and wrk
used, and for fraudsvc the mean time of each stage of the scoring path (from its /metrics).
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import resource
import statistics
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import polars as pl

from fraudsvc.features import DECLARATION, batch_features
from fraudsvc.transaction import OPTIONAL_FIELDS
from tests.bench import procstat, waits, wrk
from tests.bench.environment import Bench

STAGES = ("history", "score", "rules", "persist", "enqueue")
SCORE_PATH = "/v1/transactions"
_SAMPLE = re.compile(r"^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})?\s+(\S+)$")


@dataclass
class Clock:
    """Simulated time of the scoring load, in epoch seconds."""

    base: float
    step: float

    def advance(self, sent: int) -> None:
        self.base += (sent + 1) * self.step


@dataclass
class Target:
    """A server under load: how to build its wrk script and which processes are its CPU."""

    name: str
    url: str
    script: Callable[[wrk.Pacing], Path]
    finished: Callable[[wrk.WrkResult, wrk.Pacing], None]
    server_pids: Callable[[], list[int]]
    metrics_url: str | None = None
    database_url: str | None = None


@dataclass
class LoadRun:
    target: str
    rate: float | None
    repeat: int
    pacing: wrk.Pacing
    result: wrk.WrkResult
    cpu_ms: dict[str, float]
    """CPU milliseconds per completed request: server, postgres, wrk."""
    stages_ms: dict[str, float] = field(default_factory=dict)
    """Mean milliseconds per scoring stage and of the whole request, in the server (fraudsvc)."""
    stops: dict[str, float] = field(default_factory=dict)
    """Full collections and late event-loop wake-ups in the server during the run (fraudsvc),
    and the CPU seconds of everything else on the machine (`machine_cpu`)."""

    @property
    def level(self) -> str:
        return level_name(self.rate)

    def as_json(self) -> dict[str, object]:
        r = self.result
        return {
            "target": self.target,
            "level": self.level,
            "rate": self.rate,
            "repeat": self.repeat,
            "connections": self.pacing.connections,
            "achieved": r.rate,
            "requests": r.requests,
            "seconds": r.seconds,
            "latency_ms": {str(k): v for k, v in r.latency_ms.items()} | r.extra,
            "non_2xx": r.non_2xx,
            "socket_errors": r.socket_errors,
            "statuses": r.statuses,
            "cpu_ms_per_request": self.cpu_ms,
            "stages_ms": self.stages_ms,
            "stops": self.stops,
        }


def level_name(rate: float | None) -> str:
    return "saturation" if rate is None else f"{rate:g}/s"


# --------------------------------------------------------------------------- request pools


def request_rows(sample: pl.DataFrame) -> list[tuple[str, str, float, str]]:
    """(customer, terminal, amount, the payment attributes as JSON members) per row: the
    requests carry what real payments carry, so every declared feature is computed."""
    optional = [f for f in OPTIONAL_FIELDS if f in sample.columns]
    rows = []
    for row in sample.select("customer_id", "terminal_id", "amount", *optional).iter_rows():
        members = "".join(
            # attributes are stored as JSON text: sent as the object they are
            f", {json.dumps(name)}: {value if name == 'attributes' else json.dumps(value)}"
            for name, value in zip(optional, row[3:], strict=True)
            if value is not None
        )
        rows.append((row[0], row[1], row[2], members))
    return rows


class Pools:
    """The transactions the load draws from, as wrk data files for both servers."""

    def __init__(self, bench: Bench, directory: Path) -> None:
        self.bench = bench
        self.directory = directory
        recent = bench.recent()
        n = bench.plan.pool_rows
        sample = recent.sample(n, seed=11, with_replacement=n > recent.height)
        self.score_pool = directory / "score-pool.lua"
        self.score_pool.write_text(wrk.score_pool(request_rows(sample)))
        self.sample = sample
        self.clock = Clock(bench.history_end.timestamp() + 1.0, bench.seconds_per_transaction)
        self.runs = 0
        self.last_prefix = ""
        """The transaction id prefix of the latest fraudsvc run."""
        self._invocation_pool: Path | None = None

    def score_script(
        self, pacing: wrk.Pacing, pool: Path | None = None, clock: Clock | None = None
    ) -> Path:
        """A scoring run's script: requests drawn from `pool` (default: the run's sample) with
        timestamps on `clock` (default: the history's clock)."""
        self.runs += 1
        prefix = f"{self.bench.id_prefix}-{self.runs:03d}-"
        clock = clock or self.clock
        config: dict[str, wrk.LuaValue] = {
            "pool": str(pool or self.score_pool),
            "prefix": prefix,
            "base": clock.base,
            "step": clock.step,
            "api_key": self.bench.api_key,
            "path": SCORE_PATH,
            "seed": self.runs,
        }
        path = self.directory / f"score-{self.runs:03d}.lua"
        path.write_text(wrk.render_script("score", pacing, config))
        self.last_prefix = prefix
        return path

    def score_finished(self, result: wrk.WrkResult, pacing: wrk.Pacing) -> None:
        # requests still in flight when wrk stopped were sent too
        self.clock.advance(result.requests + pacing.connections)

    @property
    def invocation_pool(self) -> Path:
        if self._invocation_pool is None:
            featured = batch_features(self.bench.frame).select("transaction_id", *DECLARATION.names)
            rows = self.sample.head(max(200, self.bench.plan.pool_rows // 10)).join(
                featured, on="transaction_id", how="left"
            )
            columns = list(DECLARATION.names)
            bodies = [
                json.dumps({"dataframe_split": {"columns": columns, "data": [list(values)]}})
                for values in rows.select(columns).iter_rows()
            ]
            self._invocation_pool = self.directory / "invocation-pool.lua"
            self._invocation_pool.write_text(wrk.invocation_pool(bodies))
        return self._invocation_pool

    def invocation_script(self, pacing: wrk.Pacing) -> Path:
        self.runs += 1
        config: dict[str, wrk.LuaValue] = {
            "pool": str(self.invocation_pool),
            "path": "/invocations",
            "seed": self.runs,
        }
        path = self.directory / f"invocations-{self.runs:03d}.lua"
        path.write_text(wrk.render_script("invocations", pacing, config))
        return path


# --------------------------------------------------------------------------- measuring


def parse_metrics(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Prometheus text samples as {(name, labels): value}."""
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line.strip())
        if match is None:
            continue
        name, raw_labels, value = match.groups()
        labels = frozenset(
            (k, v) for k, v in re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', raw_labels or "")
        )
        try:
            samples[(name, labels)] = float(value)
        except ValueError:
            continue
    return samples


def stage_means(
    before: dict[tuple[str, frozenset[tuple[str, str]]], float],
    after: dict[tuple[str, frozenset[tuple[str, str]]], float],
) -> dict[str, float]:
    """Mean milliseconds per scoring stage and per scoring request between two scrapes."""
    out: dict[str, float] = {}

    def delta(name: str, labels: frozenset[tuple[str, str]]) -> float:
        return after.get((name, labels), 0.0) - before.get((name, labels), 0.0)

    for stage in STAGES:
        labels = frozenset({("stage", stage)})
        count = delta("fraudsvc_scoring_stage_seconds_count", labels)
        if count > 0:
            out[stage] = 1000.0 * delta("fraudsvc_scoring_stage_seconds_sum", labels) / count
    request = frozenset({("method", "POST"), ("route", SCORE_PATH)})
    count = delta("fraudsvc_http_request_duration_seconds_count", request)
    if count > 0:
        out["request"] = (
            1000.0 * delta("fraudsvc_http_request_duration_seconds_sum", request) / count
        )
        # stages that ran for only some requests (the enqueue) weigh by their share
        shares = {
            s: delta("fraudsvc_scoring_stage_seconds_count", frozenset({("stage", s)})) / count
            for s in STAGES
        }
        out["other"] = out["request"] - sum(out.get(s, 0.0) * shares[s] for s in STAGES)
    return out


def stops(
    before: dict[tuple[str, frozenset[tuple[str, str]]], float],
    after: dict[tuple[str, frozenset[tuple[str, str]]], float],
) -> dict[str, float]:
    """What stopped the whole web process between two scrapes (fraudsvc.telemetry.runtime):
    full collections (how many, their total ms) and event-loop wake-ups later than 20 ms; and
    how many scoring requests took over 20 ms in the server, and how many of the two database
    stages over 10 ms (fraudsvc's own histograms)."""

    def delta(name: str, **labels: str) -> float:
        key = (name, frozenset(labels.items()))
        return after.get(key, 0.0) - before.get(key, 0.0)

    lag = "fraudsvc_event_loop_lag_seconds"
    request = "fraudsvc_http_request_duration_seconds"
    stage = "fraudsvc_scoring_stage_seconds"
    scoring = {"method": "POST", "route": SCORE_PATH}
    return {
        "server_over_20ms": delta(request + "_count", **scoring)
        - delta(request + "_bucket", le="0.02", **scoring),
        "database_over_10ms": sum(
            delta(stage + "_count", stage=s) - delta(stage + "_bucket", le="0.01", stage=s)
            for s in ("history", "persist")
        ),
        "gc_full": delta("fraudsvc_gc_pause_seconds_count"),
        "gc_ms": 1000.0 * delta("fraudsvc_gc_pause_seconds_sum"),
        "lag_over_20ms": delta(lag + "_count") - delta(lag + "_bucket", le="0.02"),
        "lag_max_ms": _worst_bound(before, after, lag),
    }


def machine_cpu(
    before: tuple[float, float, float],
    after: tuple[float, float, float],
    accounted: float,
    postgres_background: float,
) -> dict[str, float]:
    """CPU seconds during a run of what is neither the server, its database's backends nor
    wrk: PostgreSQL's other processes (checkpointer, WAL writer, autovacuum, other databases'
    backends; one that started and ended within the run is missed), the rest of the machine
    (this benchmark's own process included), the time the hypervisor stole, and the cores'
    idle time (at saturation: one core waiting while the other runs the web process's serial
    part or PostgreSQL alone; tests/bench/FINDINGS.md)."""
    busy = after[0] - before[0]
    return {
        "postgres_background_s": postgres_background,
        "rest_s": max(0.0, busy - accounted - postgres_background),
        "steal_s": after[1] - before[1],
        "idle_s": after[2] - before[2],
    }


def _worst_bound(
    before: dict[tuple[str, frozenset[tuple[str, str]]], float],
    after: dict[tuple[str, frozenset[tuple[str, str]]], float],
    histogram: str,
) -> float:
    """The upper bound (ms) of the smallest bucket that holds every observation between two
    scrapes: the worst one was at most that (inf past the last bucket, 0 with none)."""
    deltas: dict[float, float] = {}
    for (name, labels), value in after.items():
        le = dict(labels).get("le")
        if name == histogram + "_bucket" and le is not None:
            deltas[float(le)] = value - before.get((name, labels), 0.0)
    total = deltas.get(math.inf, 0.0)
    if total <= 0:
        return 0.0
    return 1000.0 * min(le for le, n in deltas.items() if n >= total)


def scrape(url: str | None) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    if url is None:
        return {}
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return parse_metrics(response.read().decode())
    except OSError:
        return {}


def _ask(database_url: str | None, sql: str) -> list[asyncpg.Record] | None:
    """The rows of one query on a connection of its own; None without a database or when it
    does not answer."""
    if database_url is None:
        return None

    async def query() -> list[asyncpg.Record]:
        connection = await asyncpg.connect(database_url)
        try:
            rows: list[asyncpg.Record] = await connection.fetch(sql)
        finally:
            await connection.close()
        return rows

    try:
        return asyncio.run(query())
    except (OSError, asyncpg.PostgresError):
        return None


def backend_pids(database_url: str | None) -> list[int]:
    """PostgreSQL backends serving the benchmark's database (not this query's own)."""
    rows = _ask(
        database_url,
        "SELECT pid FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    return [int(r["pid"]) for r in rows or []]


def wal_written(database_url: str | None) -> tuple[float, float]:
    """WAL bytes and full-page images the server has written so far (pg_stat_wal: every
    database's, backends flush their counts at least every second); NaN without a database."""
    rows = _ask(database_url, "SELECT wal_bytes, wal_fpi FROM pg_stat_wal")
    if not rows:
        return math.nan, math.nan
    return float(rows[0]["wal_bytes"]), float(rows[0]["wal_fpi"])


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_level(target: Target, rate: float | None, seconds: float, repeat: int) -> LoadRun:
    pacing = wrk.pacing_for(rate)
    script = target.script(pacing)
    server = target.server_pids()
    backends = backend_pids(target.database_url)
    server_before = procstat.total_cpu_seconds(server)
    postgres_before = {pid: procstat.cpu_seconds(pid) for pid in procstat.named("postgres")}
    machine_before = procstat.machine_cpu_seconds()
    wal_before = wal_written(target.database_url)
    wrk_before = children_cpu_seconds()
    metrics_before = scrape(target.metrics_url)
    with waits.WaitSampler(target.database_url) as sampler:
        result, _ = wrk.run(target.url, script, pacing, seconds)
    wrk_cpu = children_cpu_seconds() - wrk_before
    gone = [pid for pid in server if not procstat.running(pid)]
    if gone:  # its CPU would read as 0, and whoever answered on its port was measured
        raise RuntimeError(f"{target.name}: server process {gone} is gone after a run")
    server_cpu = procstat.total_cpu_seconds(server) - server_before
    postgres_after = {pid: procstat.cpu_seconds(pid) for pid in procstat.named("postgres")}
    machine_after = procstat.machine_cpu_seconds()
    ours = set(backends) | set(backend_pids(target.database_url))
    postgres_used = {
        pid: max(0.0, cpu - postgres_before.get(pid, 0.0)) for pid, cpu in postgres_after.items()
    }
    postgres_cpu = sum(used for pid, used in postgres_used.items() if pid in ours)
    metrics_after = scrape(target.metrics_url)
    stages = stage_means(metrics_before, metrics_after) if target.metrics_url else {}
    stopped = stops(metrics_before, metrics_after) if target.metrics_url else {}
    stopped |= machine_cpu(
        machine_before,
        machine_after,
        accounted=server_cpu + postgres_cpu + wrk_cpu,
        postgres_background=sum(u for pid, u in postgres_used.items() if pid not in ours),
    )
    n = max(1, result.requests)
    wal_after = wal_written(target.database_url)
    stopped["wal_kb"] = (wal_after[0] - wal_before[0]) / 1024 / n
    stopped["wal_fpi"] = (wal_after[1] - wal_before[1]) / n
    stopped |= {f"waits_{c}": share for c, share in waits.shares(sampler.counts).items()}
    target.finished(result, pacing)
    return LoadRun(
        target=target.name,
        rate=rate,
        repeat=repeat,
        pacing=pacing,
        result=result,
        cpu_ms={
            "server": 1000.0 * server_cpu / n,
            "postgres": 1000.0 * postgres_cpu / n,
            "wrk": 1000.0 * wrk_cpu / n,
        },
        stages_ms=stages,
        stops=stopped,
    )


def describe(run: LoadRun) -> str:
    r = run.result
    errors = f", {r.errors} errors" if r.errors else ""
    return (
        f"    {run.target:<8} {run.level:>10}  {r.rate:7.1f} req/s  p50 {r.p50_ms:7.2f} ms  "
        f"p99 {r.p99_ms:8.2f} ms  ({run.pacing.connections} conn{errors})"
    )


def pools_for(bench: Bench) -> Pools:
    """The request pools of this run, built once and shared by the sections."""
    if bench.load_pools is None:
        directory = bench.workdir / "load"
        directory.mkdir(exist_ok=True)
        bench.load_pools = Pools(bench, directory)
    return bench.load_pools


def fraudsvc_target(bench: Bench, pools: Pools) -> Target:
    web = bench.web()
    return Target(
        name="fraudsvc",
        url=web.web_url,
        script=pools.score_script,
        finished=pools.score_finished,
        server_pids=lambda: [web.web.pid],
        metrics_url=f"{web.web_url}/metrics",
        database_url=web.database_url,
    )


def bare_target(bench: Bench, pools: Pools) -> Target:
    """The same requests to `tests.bench.bare`: fraudsvc's two round trips without fraudsvc."""
    service, url = bench.bare()
    return Target(
        name="bare",
        url=url,
        script=pools.score_script,
        finished=pools.score_finished,
        server_pids=lambda: [service.pid],
        database_url=bench.database_url,
    )


def mlflow_target(bench: Bench, pools: Pools) -> Target:
    service, url = bench.mlflow_server()
    return Target(
        name="mlflow",
        url=url,
        script=pools.invocation_script,
        finished=lambda result, pacing: None,
        server_pids=lambda: [service.pid, *procstat.descendants(service.pid)],
    )


def warm_up(targets: list[Target], seconds: float) -> None:
    for target in targets:
        run_level(target, 200.0, seconds, repeat=-1)


def matrix(
    targets: list[Target], rates: tuple[float, ...], seconds: float, repeat: int
) -> list[LoadRun]:
    """Every level for every target, interleaved (level by level), `repeat` times."""
    runs: list[LoadRun] = []
    levels: list[float | None] = [*rates, None]
    for r in range(repeat):
        print(f"  round {r + 1}/{repeat}", flush=True)
        for rate in levels:
            for target in targets:
                run = run_level(target, rate, seconds, r)
                print(describe(run), flush=True)
                runs.append(run)
    return runs


def median_of(runs: list[LoadRun], value: Callable[[LoadRun], float]) -> float:
    values = [value(r) for r in runs if not math.isnan(value(r))]
    return statistics.median(values) if values else math.nan


def pick(runs: list[LoadRun], target: str, rate: float | None) -> list[LoadRun]:
    return [r for r in runs if r.target == target and r.rate == rate]
