"""The benchmark's world, built on demand and torn down in reverse order, even on failure.

- the data set (1M rows, or the small one with --quick), generated once per run;
- a model trained on it and registered as champion into a temporary MLflow store
  (FRAUDSVC_DATA_DIR in the run's temporary folder);
- a fresh PostgreSQL database `fraudsvc_bench_<pid>_<hex>` on the machine's server, migrated,
  holding the whole data set as history (backfill), vacuumed and analysed as autovacuum would
  leave it, and dropped at the end;
- `fraudsvc web` (and `fraudsvc worker` when a section asks) as subprocesses in their own process
  groups (`processes.Service`), on Redis with a queue name of this run, with the rate limit off and
  the default explanation policy;
- `mlflow models serve` for the same registered model.

Whatever the sections leave in Redis under this run's queue and transaction ids is deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import secrets
import statistics
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import polars as pl
from loguru import logger

from fraudsvc import processes
from fraudsvc.contract import load_contract_file
from fraudsvc.features import DECLARATION
from fraudsvc.model import registry
from fraudsvc.settings import Settings
from tests.bench.offline import data_file
from tests.bench.plan import Plan
from tests.bench.report import Report

if TYPE_CHECKING:
    from tests.bench.load import Pools

SERVER = os.environ.get("FRAUDSVC_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("FRAUDSVC_BENCH_REDIS", "redis://127.0.0.1:6379/0")
START_SECONDS = 180.0
HISTORY_PROBES = 1_000
# the service's and its libraries' variables are set by the benchmark alone
INHERITED_PREFIXES = ("FRAUDSVC_", "MLFLOW_", "OTEL_")
INHERITED_NAMES = frozenset({"DATABASE_URL", "REDIS_URL", "DATA_CSV", "LOG_LEVEL", "PICCOLO_CONF"})


class BenchError(RuntimeError):
    """The benchmark cannot go on (a service did not start, no model was registered...)."""


@dataclass(frozen=True)
class Model:
    name: str
    version: str
    path: Path
    """The registered version's local copy (booster, thresholds, LIME background)."""
    review: float
    block: float


@dataclass
class Stack:
    database_url: str
    web: processes.Service
    web_url: str
    worker: processes.Service | None = None
    worker_url: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)


def clean_environment() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(INHERITED_PREFIXES) and k not in INHERITED_NAMES
    }
    # `mlflow models serve` runs `uvicorn` from PATH: put this environment's scripts first
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")])
    return env


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class Bench:
    """Lazily built resources of one benchmark run; `close()` undoes all of them."""

    def __init__(self, plan: Plan, workdir: Path, report: Report) -> None:
        self.plan = plan
        self.workdir = workdir
        self.report = report
        self.token = secrets.token_hex(3)
        self.api_key = "bench-" + secrets.token_hex(12)
        self.queue_name = f"fraudsvc-bench:{self.token}"
        self.id_prefix = f"b{self.token}"
        self.logs = workdir / "logs"
        self.logs.mkdir(exist_ok=True)
        (workdir / "tmp").mkdir(exist_ok=True)
        self.exit = ExitStack()
        self._frame: pl.DataFrame | None = None
        self._model: Model | None = None
        self._stack: Stack | None = None
        self._mlflow: tuple[processes.Service, str] | None = None
        self._bare: tuple[processes.Service, str] | None = None
        self.load_pools: Pools | None = None
        self._mlflow_ready = False
        self._mlflow_started = 0.0
        self.database_url = f"{SERVER.rstrip('/')}/fraudsvc_bench_{os.getpid()}_{self.token}"
        self.env = clean_environment() | {
            "FRAUDSVC_DATA_DIR": str(workdir / "stack-data"),
            "DATABASE_URL": self.database_url,
            "REDIS_URL": REDIS_URL,
            "FRAUDSVC_QUEUE_NAME": self.queue_name,
            "FRAUDSVC_API_KEYS": self.api_key,
            "FRAUDSVC_RATE_LIMIT_PER_SECOND": "0",
            "FRAUDSVC_HOST": "127.0.0.1",
            "TMPDIR": str(workdir / "tmp"),
        }
        self.settings = Settings.from_env(self.env)

    def close(self) -> None:
        self.exit.close()

    # ------------------------------------------------------------------ data and model

    @property
    def data(self) -> Path:
        return data_file(self.plan, self.workdir)

    @property
    def frame(self) -> pl.DataFrame:
        if self._frame is None:
            logger.disable("fraudsvc.contract")
            try:
                self._frame = load_contract_file(self.data, require_labels=True).frame
            finally:
                logger.enable("fraudsvc.contract")
        return self._frame

    def recent(self, days: int = 30) -> pl.DataFrame:
        """The last `days` of the history: the population the load is drawn from."""
        last = self.frame["timestamp"].max()
        assert isinstance(last, datetime)
        return self.frame.filter(pl.col("timestamp") > last - timedelta(days=days))

    @property
    def history_end(self) -> datetime:
        last = self.frame["timestamp"].max()
        assert isinstance(last, datetime)
        return last

    @property
    def seconds_per_transaction(self) -> float:
        """The history's own pace: its time span over its rows."""
        first = self.frame["timestamp"].min()
        assert isinstance(first, datetime)
        return (self.history_end - first).total_seconds() / self.frame.height

    @property
    def model(self) -> Model:
        if self._model is None:
            self._model = self._train()
        return self._model

    def _train(self) -> Model:
        from fraudsvc.training.pipeline import TrainOptions, train

        print("  training the served model (LightGBM, no resampling) ...", flush=True)
        started = time.perf_counter()
        logger.disable("fraudsvc")
        try:
            result = train(
                self.settings,
                TrainOptions(data=self.data, resampling="none", max_rounds=self.plan.model_rounds),
            )
        finally:
            logger.enable("fraudsvc")
        version = result.promotion.registered_version
        if version is None or result.promotion.alias != "champion":
            raise BenchError(f"the bench model was not registered as champion: {result.promotion}")
        ms = self.settings.mlflow
        bundle = registry.load_version(
            ms, ms.model_name, version, self.settings.paths.data_dir / "bench-model"
        )
        assert bundle.path is not None
        model = Model(
            name=ms.model_name,
            version=version,
            path=bundle.path,
            review=bundle.thresholds.review,
            block=bundle.thresholds.block,
        )
        self.report.data["model"] = {
            "name": model.name,
            "version": model.version,
            "rows": result.rows,
            "test_roc_auc": result.model.roc_auc,
            "test_average_precision": result.model.average_precision,
            "thresholds": {"review": model.review, "block": model.block},
            "seconds": time.perf_counter() - started,
        }
        print(
            f"  model {model.name} v{model.version}: test ROC AUC {result.model.roc_auc:.4f}, "
            f"thresholds review {model.review:.4f} block {model.block:.4f} "
            f"({time.perf_counter() - started:.0f} s)",
            flush=True,
        )
        return model

    # ------------------------------------------------------------------ services

    def service_env(self, **extra: str) -> dict[str, str]:
        return self.env | extra

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> processes.Service:
        service = processes.Service(name, argv, env, self.logs / f"{name}.log").start()
        self.exit.callback(service.stop)
        return service

    def wait_ready(
        self, service: processes.Service, url: str, seconds: float = START_SECONDS
    ) -> None:
        deadline = time.monotonic() + seconds
        while service.alive():
            try:
                processes.wait_http(url, seconds=min(5.0, max(0.1, deadline - time.monotonic())))
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise BenchError(
                        f"{service.name} not ready at {url} within {seconds:.0f} s:\n"
                        f"{log_tail(service.log)}"
                    ) from None
                continue
            if service.alive():  # else another server answered on its port
                return
        raise BenchError(f"{service.name} exited during startup:\n{log_tail(service.log)}")

    def start_mlflow(self) -> None:
        """Start `mlflow models serve` without waiting: it takes a while to come up, so it
        does while the database is filled."""
        if self._mlflow is not None:
            return
        model = self.model
        port = processes.free_port()
        launcher = Path(sys.executable).parent / "mlflow"
        argv = [str(launcher)] if launcher.is_file() else [sys.executable, "-m", "mlflow"]
        argv += [
            "models", "serve",
            "-m", f"models:/{model.name}@champion",
            "--env-manager", "local",
            "--workers", "1",
            "-h", "127.0.0.1",
            "-p", str(port),
        ]  # fmt: skip
        env = clean_environment() | {
            "MLFLOW_TRACKING_URI": self.settings.mlflow.tracking_uri,
            "TMPDIR": str(self.workdir / "tmp"),
        }
        url = f"http://127.0.0.1:{port}"
        print(f"  starting mlflow models serve -m models:/{model.name}@champion ...", flush=True)
        self._mlflow = (self.start("mlflow", argv, env), url)
        self._mlflow_started = time.perf_counter()

    def mlflow_server(self) -> tuple[processes.Service, str]:
        """MLflow's scoring server for the champion, started if needed and ready."""
        self.start_mlflow()
        assert self._mlflow is not None
        service, url = self._mlflow
        if not self._mlflow_ready:
            self.wait_ready(service, f"{url}/ping", seconds=300)
            self._mlflow_ready = True
            self.report.data["mlflow_serve_start_seconds"] = (
                time.perf_counter() - self._mlflow_started
            )
        return service, url

    @property
    def mlflow_service(self) -> processes.Service | None:
        return self._mlflow[0] if self._mlflow is not None else None

    @property
    def has_web(self) -> bool:
        return self._stack is not None

    def web(self) -> Stack:
        """The database with its history and a running `fraudsvc web`."""
        if self._stack is None:
            self.model  # noqa: B018 - trained and registered before the service looks for it
            facts = self._database()
            port = processes.free_port()
            web = self.start(
                "web",
                processes.fraudsvc("web"),
                self.service_env(FRAUDSVC_PORT=str(port), FRAUDSVC_WORKER_METRICS_PORT="0"),
            )
            self.wait_ready(web, f"http://127.0.0.1:{port}/readyz")
            self._stack = Stack(self.database_url, web, f"http://127.0.0.1:{port}", facts=facts)
            self.report.data["database"] = facts
        return self._stack

    def bare(self) -> tuple[processes.Service, str]:
        """`tests.bench.bare` on the same database: the two round trips and nothing else."""
        if self._bare is None:
            self.web()
            port = processes.free_port()
            argv = [sys.executable, "-m", "tests.bench.bare", str(port)]
            service = self.start("bare", argv, self.service_env())
            url = f"http://127.0.0.1:{port}"
            self.wait_ready(service, f"{url}/ready")
            self._bare = (service, url)
        return self._bare

    def start_worker(self, **extra_env: str) -> processes.Service:
        """`fraudsvc worker` (the default process pool), ready; `extra_env` for a what-if."""
        current = self.web()
        if current.worker is not None:
            return current.worker
        port = processes.free_port()
        url = f"http://127.0.0.1:{port}"
        worker = self.start(
            "worker",
            processes.fraudsvc("worker"),
            self.service_env(FRAUDSVC_WORKER_METRICS_PORT=str(port), **extra_env),
        )
        self.wait_ready(worker, f"{url}/readyz")
        current.worker, current.worker_url = worker, url
        return worker

    def stop_worker(self) -> None:
        current = self.web()
        if current.worker is not None:
            current.worker.stop()
            current.worker = current.worker_url = None

    # ------------------------------------------------------------------ database

    def _database(self) -> dict[str, Any]:
        self.exit.callback(self._drop_database)
        self.exit.callback(self._clean_redis)
        print(
            f"  database {self.database_url.rsplit('/', 1)[-1]}: migrate, backfill ...", flush=True
        )
        return asyncio.run(self._fill())

    async def _fill(self) -> dict[str, Any]:
        from fraudsvc.db import engine
        from fraudsvc.db.admin import migrate
        from fraudsvc.db.backfill import backfill

        # the service's statement timeout bounds a request; a bulk load of the history on a
        # shared machine may take longer per statement, and it is set-up, not a measure
        database = Settings.from_env(self.env | {"FRAUDSVC_DB_TIMEOUT_SECONDS": "300"}).database
        with contextlib.redirect_stdout(io.StringIO()):  # Piccolo prints every migration
            await migrate(database)
        await engine.start_pool(database)
        try:
            started = time.perf_counter()
            result = await backfill(self.frame, None, timedelta(seconds=DECLARATION.label_delay))
            backfill_seconds = time.perf_counter() - started
        finally:
            await engine.close_pool()
        connection = await asyncpg.connect(self.database_url)
        try:
            probes = self.recent().sample(HISTORY_PROBES, seed=3, with_replacement=True)
            cold = await history_latencies(connection, probes, self.history_end, "cold")
            started = time.perf_counter()
            # what autovacuum does to an insert-only table shortly after a bulk load: the
            # visibility map (index-only scans) and planner statistics
            await connection.execute("VACUUM (ANALYZE) transactions, labels")
            vacuum_seconds = time.perf_counter() - started
            warm = await history_latencies(connection, probes, self.history_end, "vacuumed")
            checkpoint_seconds = await settle(connection)
            server_version = await connection.fetchval("SHOW server_version")
        finally:
            await connection.close()
        facts = {
            "transactions": result.transactions,
            "labels": result.labels,
            "backfill_seconds": backfill_seconds,
            "vacuum_analyze_seconds": vacuum_seconds,
            "checkpoint_seconds": checkpoint_seconds,
            "history_statement_ms_after_backfill": cold,
            "history_statement_ms_after_vacuum_analyze": warm,
            "postgresql": server_version,
        }
        print(
            f"  backfilled {result.transactions:,} transactions and {result.labels:,} labels in "
            f"{backfill_seconds:.1f} s; VACUUM ANALYZE {vacuum_seconds:.1f} s",
            flush=True,
        )
        return facts

    def _drop_database(self) -> None:
        from fraudsvc.db.admin import drop_database

        try:
            asyncio.run(drop_database(self.database_url))
        except Exception as exc:  # the report must still be written; say what is left
            print(f"  could not drop {self.database_url}: {exc}", file=sys.stderr)

    def _clean_redis(self) -> None:
        import redis

        try:
            client = redis.Redis.from_url(REDIS_URL)
            try:
                keys = [self.queue_name, f"{self.queue_name}:health-check"]
                keys += list(client.scan_iter(match=f"arq:*explain:{self.id_prefix}*", count=1000))
                for start in range(0, len(keys), 500):
                    client.delete(*keys[start : start + 500])
            finally:
                client.close()
        except Exception as exc:
            print(f"  could not clean Redis ({REDIS_URL}): {exc}", file=sys.stderr)


async def settle(connection: asyncpg.Connection) -> float | None:
    """A CHECKPOINT after the set-up, timed (None if this role may not): the bulk load's pages
    are written out before the first measure instead of by the checkpoint that the first
    round's WAL would start, which made that round the slowest of a run (a server whose
    history was loaded long ago has written it out too)."""
    started = time.perf_counter()
    try:
        await connection.execute("CHECKPOINT")
    except asyncpg.InsufficientPrivilegeError:
        return None
    return time.perf_counter() - started


async def history_latencies(
    connection: asyncpg.Connection, probes: pl.DataFrame, after: datetime, tag: str
) -> dict[str, float]:
    """The scoring path's window statement, direct on one connection: median and p99 (ms)."""
    from fraudsvc.db.queries import window_read
    from fraudsvc.transaction import Transaction

    read = window_read(DECLARATION)
    statement = await connection.prepare(read.sql)
    latencies: list[float] = []
    for i, (customer, terminal) in enumerate(
        probes.select("customer_id", "terminal_id").iter_rows()
    ):
        t = after + timedelta(seconds=1 + i)
        args, _ = read.params(Transaction(f"probe-{tag}-{i}", t, customer, terminal, 1000))
        started = time.perf_counter()
        await statement.fetch(*args)
        latencies.append((time.perf_counter() - started) * 1000)
    latencies.sort()
    return {
        "median": statistics.median(latencies),
        "p99": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
    }
