"""Explanations end to end with the real Redis, PostgreSQL and MLflow store: the job, its
idempotency, Redis outages, failures, the embedded worker, and a worker killed mid-job."""

from __future__ import annotations

import asyncio
import math
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from arq.constants import job_key_prefix

from fraudsvc.explain import explain_vector
from fraudsvc.explain_options import LimeOptions
from fraudsvc.jobs.payloads import job_id
from fraudsvc.jobs.queue import connect
from fraudsvc.jobs.worker import RunningWorker, running_worker
from fraudsvc.model import registry
from fraudsvc.model.loader import ModelHolder
from fraudsvc.private_servers import PrivateRedis
from fraudsvc.settings import Settings
from tests.bench import procstat
from tests.service import FAST_LIME, running_service, service_env
from tests.service import transaction as tx

pytestmark = pytest.mark.slow


@asynccontextmanager
async def worker_for(settings: Settings) -> AsyncIterator[RunningWorker]:
    """An in-process worker sharing the running service's database pool."""
    async with running_worker(settings, ModelHolder(settings)) as running:
        yield running


async def wait_status(
    client: httpx.AsyncClient, transaction_id: str, wanted: str, seconds: float = 60
) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for _ in range(int(seconds / 0.1)):
        response = await client.get(f"/v1/transactions/{transaction_id}/explanation")
        body = response.json()
        if body.get("status") == wanted:
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"explanation of {transaction_id} is {body.get('status')}, not {wanted}")


async def test_a_flagged_or_requested_transaction_is_explained_with_its_model(
    registry_dir: Path, database_url: str
) -> None:
    settings = Settings.from_env(
        service_env(registry_dir, database_url, FRAUDSVC_EXPLAIN="all", **FAST_LIME)
    )
    # every contract v2 field present, so no feature is missing and LIME varies them all
    body = tx(
        merchant_category="5411",
        merchant_country="FR",
        card_country="DE",
        channel="ecommerce",
        device_id="dev-" + os.urandom(4).hex(),
        ip="192.0.2.7",
    )
    async with running_service(settings) as client, worker_for(settings):
        scored = (await client.post("/v1/transactions", json=body)).json()
        assert scored["explanation"]["status"] == "pending"
        explanation = await wait_status(client, body["transaction_id"], "done")
        response = await client.get(scored["explanation"]["url"])
    assert response.status_code == 200
    assert explanation["model"] == scored["model"]
    assert explanation["score"] == pytest.approx(scored["score"], abs=1e-12)
    defaults = LimeOptions()
    assert explanation["parameters"] == {
        "num_samples": 500,
        "num_features": defaults.num_features,
        "seed": 42,
        "discretizer": defaults.discretizer,
        "sample_around_instance": defaults.sample_around_instance,
        "kernel_width_factor": defaults.kernel_width_factor,
        "stability_seeds": defaults.stability_seeds,
    }
    assert explanation["attempts"] == 1
    assert explanation["reason"] == "all"
    assert len(explanation["weights"]) == defaults.num_features
    first = explanation["weights"][0]
    assert set(first) == {"feature", "value", "condition", "weight", "step"}
    assert first["feature"] in first["condition"]
    assert 0 <= explanation["predict_ms"] <= explanation["duration_ms"]
    # on the log-odds: the model's output there is logit(score), and LIME's numbers are beside it
    p = scored["score"]
    assert explanation["target"] == "log_odds"
    assert explanation["model_output"] == pytest.approx(math.log(p / (1 - p)), abs=1e-6)
    assert explanation["local_error"] == pytest.approx(
        explanation["local_prediction"] - explanation["model_output"]
    )
    assert 0.0 <= explanation["local_fit_r2"] <= 1.0
    assert 0.0 <= explanation["stability"] <= 1.0
    assert explanation["held_missing"] == []


async def test_requests_are_idempotent_and_404s_say_which(
    registry_dir: Path, database_url: str
) -> None:
    settings = Settings.from_env(service_env(registry_dir, database_url, FRAUDSVC_EXPLAIN="none"))
    body = tx()
    tid = body["transaction_id"]
    async with running_service(settings) as client:
        unknown = await client.get("/v1/transactions/nothing-here/explanation")
        scored = (await client.post("/v1/transactions", json=body)).json()
        not_requested = await client.get(f"/v1/transactions/{tid}/explanation")
        first = await client.post(f"/v1/transactions/{tid}/explanation")
        second = await client.post(f"/v1/transactions/{tid}/explanation")
        pending = await client.get(f"/v1/transactions/{tid}/explanation")
    assert scored["explanation"]["status"] == "not_requested"
    assert unknown.status_code == 404
    assert "unknown transaction" in unknown.json()["message"]
    assert not_requested.status_code == 404
    assert "no explanation was requested" in not_requested.json()["message"]
    assert first.status_code == second.status_code == 202
    assert (
        first.json()
        == second.json()
        == {
            "transaction_id": tid,
            "status": "pending",
            "url": f"/v1/transactions/{tid}/explanation",
        }
    )
    assert pending.status_code == 202
    assert pending.json()["reason"] == "requested"
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetchval(
            "SELECT count(*) FROM explanations WHERE transaction_id = $1", tid
        )
    finally:
        await connection.close()
    assert rows == 1


def test_the_same_vector_and_seed_give_the_same_explanation(registry_dir: Path) -> None:
    settings = Settings.from_env({"FRAUDSVC_DATA_DIR": str(registry_dir)})
    ms = settings.mlflow
    bundle = registry.load_version(ms, ms.model_name, "1", settings.paths.model_cache_dir)
    assert bundle.path is not None
    vector = [float(v) for v in bundle.background[7]]
    options = LimeOptions(num_samples=800)
    one = explain_vector(str(bundle.path), vector, options, seed=42)
    two = explain_vector(str(bundle.path), vector, options, seed=42)
    other = explain_vector(str(bundle.path), vector, options, seed=7)
    for key in ("weights", "local_prediction", "intercept", "score", "stability"):
        assert one[key] == two[key]
    assert one["weights"] != other["weights"]
    assert one["score"] == other["score"]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_scores_survive_redis_down_and_the_sweep_sends_them_later(
    registry_dir: Path, database_url: str
) -> None:
    env = service_env(
        registry_dir,
        database_url,
        FRAUDSVC_EXPLAIN="all",
        FRAUDSVC_SWEEP_AFTER_SECONDS="1",
        **FAST_LIME,
    )
    no_redis = Settings.from_env({**env, "REDIS_URL": f"redis://127.0.0.1:{closed_port()}/0"})
    bodies = [tx() for _ in range(3)]
    async with running_service(no_redis) as client:
        answers = [await client.post("/v1/transactions", json=b) for b in bodies]
        ready = (await client.get("/readyz")).json()
    assert [a.status_code for a in answers] == [201, 201, 201]
    assert {a.json()["explanation"]["status"] for a in answers} == {"pending"}
    assert ready["ready"] is True
    assert ready["checks"]["redis"]["ok"] is False

    settings = Settings.from_env(env)  # Redis is back
    async with running_service(settings) as client, worker_for(settings):
        done = [await wait_status(client, b["transaction_id"], "done") for b in bodies]
    assert all(d["attempts"] == 1 for d in done)


async def test_a_job_that_keeps_failing_ends_failed_with_the_error(
    registry_dir: Path, database_url: str
) -> None:
    settings = Settings.from_env(
        service_env(
            registry_dir,
            database_url,
            FRAUDSVC_EXPLAIN="none",
            FRAUDSVC_EXPLAIN_MAX_TRIES="2",
            **FAST_LIME,
        )
    )
    body = tx()
    tid = body["transaction_id"]
    async with running_service(settings) as client:
        await client.post("/v1/transactions", json=body)
        connection = await asyncpg.connect(database_url)
        try:  # a prediction whose model version no registry has: every attempt fails
            await connection.execute(
                "UPDATE predictions SET model_version = '999' WHERE transaction_id = $1", tid
            )
        finally:
            await connection.close()
        async with worker_for(settings):
            await client.post(f"/v1/transactions/{tid}/explanation")
            failed = await wait_status(client, tid, "failed", seconds=30)
        retried = await client.post(f"/v1/transactions/{tid}/explanation")
    assert failed["attempts"] == 2
    assert "999" in failed["error"]
    assert failed["weights"] is None
    assert retried.json()["status"] == "pending"


async def test_stopping_the_worker_while_arq_finishes_a_job_raises_nothing(
    registry_dir: Path, database_url: str
) -> None:
    """arq's Worker.close() cancels the job tasks and gathers them; a task caught while arq
    awaits its finish_job (under shield) re-raises the CancelledError into close(), which then
    skips deleting the heartbeat and closing its Redis connections. Seen once in make test."""
    settings = Settings.from_env(service_env(registry_dir, database_url, FRAUDSVC_EXPLAIN="none"))
    redis = connect(settings.redis)
    try:
        async with running_service(settings), worker_for(settings) as running:
            heartbeat = running.worker.health_check_key
            for _ in range(100):
                if await redis.exists(heartbeat):
                    break
                await asyncio.sleep(0.1)
            assert await redis.exists(heartbeat), "the worker never wrote its heartbeat"
            # a job task that raises CancelledError when close() cancels it, as one does when
            # the cancel lands on arq's `await asyncio.shield(self.finish_job(...))`
            running.worker.tasks["finishing"] = asyncio.create_task(asyncio.Event().wait())
        assert not await redis.exists(heartbeat)
    finally:
        await redis.aclose(close_connection_pool=True)


async def test_web_with_worker_explains_in_one_process(
    registry_dir: Path, database_url: str
) -> None:
    settings = Settings.from_env(
        service_env(registry_dir, database_url, FRAUDSVC_EXPLAIN="all", **FAST_LIME)
    )
    body = tx()
    async with running_service(settings, with_worker=True) as client:
        await client.post("/v1/transactions", json=body)
        done = await wait_status(client, body["transaction_id"], "done")
    assert done["status"] == "done"


def worker_process(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "fraudsvc.cli", "worker"],
        env={**os.environ, **env, "FRAUDSVC_WORKER_METRICS_PORT": "0"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: SIGKILL takes its LIME processes too
    )


async def test_the_worker_and_its_lime_processes_run_at_a_lower_cpu_priority(
    registry_dir: Path, database_url: str
) -> None:
    env = service_env(
        registry_dir, database_url, FRAUDSVC_WORKER_NICE="7", FRAUDSVC_EXPLAIN_PROCESSES="2"
    )
    base = os.getpriority(os.PRIO_PROCESS, 0)
    worker = worker_process(env)
    try:
        children: list[int] = []
        for _ in range(600):  # the LIME pool once it has started
            children = procstat.children(worker.pid)
            if len(children) >= 2 or worker.poll() is not None:
                break
            await asyncio.sleep(0.1)
        assert worker.poll() is None, "the worker exited"
        niceness = {pid: os.getpriority(os.PRIO_PROCESS, pid) for pid in [worker.pid, *children]}
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
    assert len(children) >= 2
    assert set(niceness.values()) == {min(19, base + 7)}


async def test_a_worker_killed_mid_job_leaves_exactly_one_explanation_each(
    registry_dir: Path, database_url: str
) -> None:
    env = service_env(
        registry_dir,
        database_url,
        FRAUDSVC_EXPLAIN="all",
        FRAUDSVC_LIME_NUM_SAMPLES="20000",  # about half a second a job: there is a middle
        FRAUDSVC_LIME_STABILITY_SEEDS="0",  # (each stability seed would add as much again)
        FRAUDSVC_EXPLAIN_PROCESSES="1",
        FRAUDSVC_JOB_TIMEOUT_SECONDS="4",  # arq hands a crashed job on after 4 + 10 s
    )
    settings = Settings.from_env(env)
    bodies = [tx() for _ in range(4)]
    async with running_service(settings) as client:
        first = worker_process(env)
        for b in bodies:
            await client.post("/v1/transactions", json=b)
        connection = await asyncpg.connect(database_url)
        try:
            for _ in range(300):
                running = await connection.fetchval(
                    "SELECT count(*) FROM explanations WHERE status = 'running' "
                    "AND transaction_id = ANY($1)",
                    [b["transaction_id"] for b in bodies],
                )
                if running:
                    break
                await asyncio.sleep(0.1)
            assert running, "no job started"
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
            second = worker_process(env)
            try:
                done = [
                    await wait_status(client, b["transaction_id"], "done", seconds=90)
                    for b in bodies
                ]
            finally:
                os.killpg(second.pid, signal.SIGTERM)
                second.wait(timeout=30)
            rows = await connection.fetch(
                "SELECT transaction_id, attempts FROM explanations WHERE transaction_id = ANY($1)",
                [b["transaction_id"] for b in bodies],
            )
        finally:
            await connection.close()
            if first.poll() is None:  # a step that failed above must leave no worker behind
                os.killpg(first.pid, signal.SIGKILL)
                first.wait()
    assert len(rows) == len(bodies)
    assert {d["status"] for d in done} == {"done"}
    assert max(r["attempts"] for r in rows) == 2  # the interrupted one ran again, once


async def test_the_worker_rides_out_a_redis_restart(
    registry_dir: Path, database_url: str, tmp_path: Path
) -> None:
    redis = PrivateRedis(tmp_path)
    redis.start()
    env = service_env(
        registry_dir,
        database_url,
        FRAUDSVC_EXPLAIN="all",
        FRAUDSVC_SWEEP_AFTER_SECONDS="1",
        REDIS_URL=redis.url,
        **FAST_LIME,
    )
    settings = Settings.from_env(env)
    before, during = [tx() for _ in range(2)], [tx() for _ in range(2)]
    try:
        async with running_service(settings) as client, worker_for(settings) as running:
            for b in before:
                await client.post("/v1/transactions", json=b)
            redis.stop()
            answers = [await client.post("/v1/transactions", json=b) for b in during]
            await asyncio.sleep(2)
            assert running.alive
            redis.start()
            done = [
                await wait_status(client, b["transaction_id"], "done", seconds=90)
                for b in before + during
            ]
            restarts = running.restarts
    finally:
        redis.stop()
    assert [a.status_code for a in answers] == [201, 201]
    assert {d["status"] for d in done} == {"done"}
    assert restarts >= 1


async def test_a_redis_outage_while_a_job_starts_does_not_end_the_worker(
    registry_dir: Path, database_url: str, tmp_path: Path
) -> None:
    """arq's close() cancels the running jobs and gathers them; a job cancelled before its own
    error handling (still reading its payload from Redis) ends cancelled, so the gather raises
    CancelledError. The supervisor once took that for its own cancellation and ended, and with
    it `fraudsvc worker`: make drills' redis-restart on a slow machine. The job here is such a
    task, put where arq keeps its jobs: no LIME run can be timed to be in that window."""
    redis = PrivateRedis(tmp_path)
    redis.start()
    settings = Settings.from_env(service_env(registry_dir, database_url, REDIS_URL=redis.url))
    try:
        async with worker_for(settings) as running:
            starting = asyncio.create_task(asyncio.Event().wait(), name="job-starting")
            running.worker.tasks["job-starting"] = starting
            redis.stop()
            await asyncio.sleep(3)
            alive_in_outage, job_cancelled = running.alive, starting.cancelled()
            redis.start()
            for _ in range(100):  # rebuilt, with its heartbeat back in the new Redis
                if running.restarts and (await running.state.queue.check()).ok:
                    break
                await asyncio.sleep(0.1)
            alive_after, restarts = running.alive, running.restarts
    finally:
        redis.stop()
    assert job_cancelled
    assert alive_in_outage
    assert alive_after
    assert restarts >= 1


async def test_the_sweep_repairs_a_job_key_that_lost_its_queue_entry(
    registry_dir: Path, database_url: str
) -> None:
    env = service_env(
        registry_dir,
        database_url,
        FRAUDSVC_EXPLAIN="all",
        FRAUDSVC_SWEEP_AFTER_SECONDS="1",
        **FAST_LIME,
    )
    settings = Settings.from_env(env)
    body = tx()
    async with running_service(settings) as client:
        await client.post("/v1/transactions", json=body)  # job queued, no worker yet
        redis = connect(settings.redis)
        try:
            jid = job_id(body["transaction_id"])
            removed = await redis.zrem(settings.redis.queue_name, jid)
            key_left = await redis.exists(job_key_prefix + jid)
        finally:
            await redis.aclose(close_connection_pool=True)
        assert (removed, key_left) == (1, 1)  # arq would refuse this id for a day
        async with worker_for(settings):
            done = await wait_status(client, body["transaction_id"], "done", seconds=60)
    assert done["attempts"] == 1


async def test_installs_sharing_a_redis_never_share_a_sweep_job(
    registry_dir: Path, database_url: str
) -> None:
    """arq names a unique cron job `<name>:<time>` across the whole Redis; two installs (two
    queues) must each get their own sweep in every slot."""
    first = Settings.from_env(service_env(registry_dir, database_url))
    second = Settings.from_env(service_env(registry_dir, database_url))
    assert first.redis.queue_name != second.redis.queue_name
    async with running_service(first), worker_for(first) as a, worker_for(second) as b:
        names = {a.worker.cron_jobs[0].name, b.worker.cron_jobs[0].name}
    assert len(names) == 2


async def test_the_worker_folds_new_rows_into_the_deferred_buckets(
    registry_dir: Path, database_url: str
) -> None:
    """A live payment leaves the terminal's buckets alone; the worker's fold brings them up to a
    minute ago, and the lag gauge says how far behind they are."""
    settings = Settings.from_env(
        service_env(registry_dir, database_url, FRAUDSVC_BUCKET_FOLD_SECONDS="0.2", **FAST_LIME)
    )
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(
            "UPDATE feature_entities SET horizon = now() - interval '1 hour' "
            "WHERE horizon IS NOT NULL"
        )
        before = await connection.fetchval(
            "SELECT horizon FROM feature_entities WHERE name = 'terminal'"
        )
        terminal = "T-fold-" + os.urandom(3).hex()
        at = before + (await connection.fetchval("SELECT interval '10 minutes'"))
        async with running_service(settings) as client:
            body = tx(terminal_id=terminal, timestamp=at.isoformat())
            assert (await client.post("/v1/transactions", json=body)).status_code == 201
            count = "SELECT count(*) FROM feature_buckets WHERE entity = 'terminal' AND key = $1"
            assert await connection.fetchval(count, terminal) == 0  # above the horizon
            async with worker_for(settings) as running:
                for _ in range(100):
                    if await connection.fetchval(count, terminal) == 3:
                        break
                    await asyncio.sleep(0.1)
                exposition = running.state.metrics.render([])[0].decode()
        folded = await connection.fetchval(count, terminal)  # a day, an hour and a minute
        after = await connection.fetchval(
            "SELECT extract(epoch FROM now() - horizon) FROM feature_entities "
            "WHERE name = 'terminal'"
        )
    finally:
        await connection.close()
    assert folded == 3
    assert 55 <= float(after) <= 120  # a minute behind, as FOLD_LAG says
    assert 'fraudsvc_bucket_folded_total{entity="terminal"}' in exposition
    assert 'fraudsvc_bucket_horizon_lag_seconds{entity="terminal"}' in exposition


async def test_a_worker_stopped_while_redis_is_down_leaves_no_connection_open(
    registry_dir: Path, database_url: str, tmp_path: Path
) -> None:
    """arq's close() fails at the heartbeat key when Redis is gone, before it closes its
    connections; left open, the garbage collector closed them later with a ResourceWarning in
    whichever test ran then (CI, 2026-11-27)."""
    redis = PrivateRedis(tmp_path)
    redis.start()
    settings = Settings.from_env(service_env(registry_dir, database_url, REDIS_URL=redis.url))
    try:
        async with worker_for(settings) as running:
            for _ in range(100):  # the worker has connected: its heartbeat is written
                if (await running.state.queue.check()).ok and running.worker._pool is not None:
                    break
                await asyncio.sleep(0.1)
            pool = running.worker.pool.connection_pool
            held = [await pool.get_connection() for _ in range(3)]  # a pool of several
            for connection in held:
                await pool.release(connection)
            redis.stop()
    finally:
        redis.stop()
    opened = [*pool._available_connections, *pool._in_use_connections]
    assert not [c for c in opened if c.is_connected]
