"""The drills' world: private PostgreSQL and Redis servers in a temporary folder, a small
generated data set, a model trained on it, the history before the live period, and
`fraudsvc web` and `fraudsvc worker` running against all of it."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import polars as pl

from fraudsvc.contract import load_contract_file
from fraudsvc.datagen import GeneratorConfig, generate
from fraudsvc.private_servers import PrivatePostgres, PrivateRedis
from fraudsvc.processes import Service, fraudsvc, free_port, wait_http
from tests.bench.environment import settle

API_KEY = "drill-key-" + os.urandom(6).hex()
# 60 days: 14 warm-up, 18 fit, 7 gap, 7 validation, 7 gap, 7 test; the last 11 are live
# traffic (about 38,000 transactions; the five drills at 300/s and their probes take 33,200)
WORLD = GeneratorConfig(customers=1_600, terminals=3_200, days=60, seed=21)
LIVE_FROM = datetime(2026, 2, 19, tzinfo=UTC)  # history before, drill traffic after
TRAIN = ["--resampling", "none", "--max-rounds", "80", "--warmup-days", "14"]
TRAIN += ["--valid-days", "7", "--test-days", "7"]


@dataclass
class Stack:
    root: Path
    postgres: PrivatePostgres
    redis: PrivateRedis
    env: dict[str, str]
    web: Service
    worker: Service
    url: str

    def start_web(self) -> None:
        self.web = Service("web", fraudsvc("web"), self.env, self.root / "web.log").start()

    def start_worker(self) -> None:
        # it shares two cores with the web process it is meant not to slow down: it lowers its
        # own CPU priority (FRAUDSVC_WORKER_NICE), so its restarts (imports of about 10 s of
        # CPU) and LIME bursts wait for the web, not the other way round
        self.worker = Service("worker", fraudsvc("worker"), self.env, self.root / "worker.log")
        self.worker.start()


@contextmanager
def private_servers(prefix: str) -> Iterator[tuple[PrivatePostgres, PrivateRedis]]:
    """A PostgreSQL cluster and a Redis of this run, removed with their folder at the end."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    postgres = PrivatePostgres(root / "pg")
    redis = PrivateRedis(root)
    postgres.init()
    postgres.start()
    redis.start()
    try:
        yield postgres, redis
    finally:
        redis.stop()
        with suppress(subprocess.CalledProcessError):
            postgres.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


async def prepare(
    root: Path, postgres: PrivatePostgres, redis: PrivateRedis
) -> tuple[Stack, pl.DataFrame]:
    """Data, migrations, model and history, then web and worker, ready; and the data set."""
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
        "FRAUDSVC_EXPLAIN": "flagged",  # as in production: LIME cannot follow 300/s
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
    # the set-up's WAL would start a checkpoint in the middle of the second drill, whose
    # full-page images then took the blame (worker-kill, a slower machine: 418 requests past
    # the 2 s timeout, all while the checkpoint ran); as the bench does, write it out first
    connection = await asyncpg.connect(postgres.url)
    try:
        await settle(connection)
    finally:
        await connection.close()
    url = f"http://127.0.0.1:{env['FRAUDSVC_PORT']}"
    web = Service("web", fraudsvc("web"), env, root / "web.log").start()
    stack = Stack(root, postgres, redis, env, web, web, url)
    stack.start_worker()
    wait_http(f"{url}/readyz", seconds=90)
    wait_http(f"http://127.0.0.1:{env['FRAUDSVC_WORKER_METRICS_PORT']}/healthz", seconds=90)
    frame = load_contract_file(data, require_labels=True).frame
    return stack, frame
