"""The arq worker around the explanation job and the sweep (beside it, as plain tasks: the
buckets' fold and the history's daily upkeep): standalone (`fraudsvc worker`) or
inside the web process (`fraudsvc web --with-worker`), built the same way in both.

- Jobs are JSON (never pickle) and carry ids; results are not kept in Redis (keep_result=0): the
  explanation lives in PostgreSQL, and a finished job's id may be reused by a later request.
- LIME runs in a process pool started with `spawn` (the worker's own threads make `fork`
  unsafe), warmed up at startup so no explanation pays for importing LIME.
- A heartbeat key in Redis (`<queue>:health-check`) is refreshed every few seconds;
  `fraudsvc worker --check` reads it, and the worker's HTTP port answers /healthz and /readyz.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import time
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field

from arq import Worker, cron, func
from loguru import logger
from redis.exceptions import RedisError

from fraudsvc.explain import warm_up
from fraudsvc.jobs.explain_job import explain
from fraudsvc.jobs.fold import fold_forever
from fraudsvc.jobs.payloads import EXPLAIN_FUNCTION, deserialize, serialize
from fraudsvc.jobs.queue import ExplainQueue, connect
from fraudsvc.jobs.state import WorkerState
from fraudsvc.jobs.sweep import sweep
from fraudsvc.jobs.upkeep import upkeep_forever
from fraudsvc.model.loader import ModelHolder
from fraudsvc.settings import Settings
from fraudsvc.telemetry.metrics import WorkerMetrics

SWEEP_EVERY_SECONDS = 10
HEALTH_CHECK_SECONDS = 5
EXTRA_ARQ_TRIES = 3
"""arq may retry a job a few more times than our attempt budget: database outages retry without
spending an attempt. Past arq's budget the row stays open and the sweep enqueues it again."""


JOB_OUTCOMES = ("done", "failed", "retried", "skipped")


def zero(metrics: WorkerMetrics) -> None:
    """Start every known series at zero, so rates and panels have data from the first scrape."""
    for outcome in JOB_OUTCOMES:
        metrics.jobs.add({"outcome": outcome}, 0)
    for status in ("pending", "running"):
        metrics.open.set({"status": status}, 0)
    metrics.queue_depth.set({}, 0)
    metrics.oldest_open.set({}, 0)
    metrics.swept.add({}, 0)
    metrics.db_errors.add({"source": "job"}, 0)
    metrics.db_errors.add({"source": "backlog"}, 0)
    metrics.db_errors.add({"source": "fold"}, 0)
    metrics.db_errors.add({"source": "review"}, 0)
    metrics.review_open.set({}, 0)
    metrics.review_oldest.set({}, 0)
    for verdict in ("fraud", "genuine"):
        metrics.review_closed.set({"verdict": verdict}, 0)
    metrics.review_precision.set({}, 0)
    metrics.redis_errors.add({"operation": "queue_depth"}, 0)
    metrics.redis_errors.add({"operation": "worker"}, 0)


def health_check_key(settings: Settings) -> str:
    return f"{settings.redis.queue_name}:health-check"


RESTART_DELAYS = (1.0, 2.0, 5.0, 10.0)
"""Pauses before rebuilding the arq worker after losing Redis (the last one repeats)."""
STABLE_SECONDS = 30.0


@dataclass
class RunningWorker:
    """The worker loop under supervision: `worker` is the current arq Worker (rebuilt after a
    Redis outage), `task` the supervisor that keeps one running until it is cancelled."""

    worker: Worker
    state: WorkerState
    restarts: int = 0
    task: asyncio.Task[None] = field(init=False)

    @property
    def alive(self) -> bool:
        return not self.task.done()

    async def supervise(self) -> None:
        """arq's main loop ends at the first Redis connection error; a Redis restart must not
        end explanations, so the loop is rebuilt until Redis answers again. Jobs interrupted
        meanwhile stay open in PostgreSQL, where the sweep finds them."""
        failures = 0
        while True:
            started = time.monotonic()
            try:
                await self.worker.async_run()
                return
            except (RedisError, OSError) as exc:
                if time.monotonic() - started > STABLE_SECONDS:
                    failures = 0
                delay = RESTART_DELAYS[min(failures, len(RESTART_DELAYS) - 1)]
                failures += 1
                self.restarts += 1
                self.state.metrics.redis_errors.inc({"operation": "worker"})
                logger.warning("worker lost Redis ({}); restarting it in {:.0f} s", exc, delay)
                with contextlib.suppress(Exception):
                    await close_worker(self.worker)
                await asyncio.sleep(delay)
                self.worker = build_worker(self.state)


def build_worker(state: WorkerState, *, burst: bool = False) -> Worker:
    settings = state.settings
    es = settings.explain
    return Worker(
        functions=[
            func(
                explain,
                name=EXPLAIN_FUNCTION,
                timeout=es.job_timeout_seconds,
                max_tries=es.max_tries + EXTRA_ARQ_TRIES,
            )
        ],
        cron_jobs=[
            cron(
                sweep,
                # arq's unique cron job id is `<name>:<time>`: without the queue in it, the
                # installs sharing a Redis would share it, and each slot's sweep would run in
                # only one of them
                name=f"sweep:{settings.redis.queue_name}",
                second=set(range(0, 60, SWEEP_EVERY_SECONDS)),
                run_at_startup=True,
                unique=True,
                # arq hands a crashed worker's jobs on after the longest function timeout + 10 s,
                # so the sweep must not have a longer timeout than the explanation job
                timeout=es.job_timeout_seconds,
            ),
        ],
        queue_name=settings.redis.queue_name,
        redis_pool=connect(settings.redis),
        burst=burst,
        handle_signals=False,
        max_jobs=settings.worker.max_jobs,
        job_timeout=es.job_timeout_seconds,
        keep_result=0,
        poll_delay=0.1,
        max_tries=es.max_tries + EXTRA_ARQ_TRIES,
        health_check_interval=HEALTH_CHECK_SECONDS,
        health_check_key=health_check_key(settings),
        ctx={"state": state},
        job_serializer=serialize,
        job_deserializer=deserialize,
        log_results=False,
    )


@asynccontextmanager
async def open_process_pool(settings: Settings) -> AsyncIterator[ProcessPoolExecutor]:
    size = settings.explain.processes
    # read by OpenBLAS when a spawned process loads it: one thread per LIME process. The
    # initializer's threadpoolctl limit alone left make bench's what-if with OpenBLAS's
    # variable 1.17x faster (28.6 against 24.5 explanations/s). An operator's value wins.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    pool = ProcessPoolExecutor(
        max_workers=size, mp_context=multiprocessing.get_context("spawn"), initializer=warm_up
    )
    loop = asyncio.get_running_loop()
    await asyncio.gather(*(loop.run_in_executor(pool, warm_up) for _ in range(size)))
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@asynccontextmanager
async def running_worker(
    settings: Settings, models: ModelHolder, metrics: WorkerMetrics | None = None
) -> AsyncIterator[RunningWorker]:
    """Run an arq worker in this event loop until the block ends. The database pool must be
    open already (the worker shares the process's pool)."""
    async with AsyncExitStack() as stack:
        pool = await stack.enter_async_context(open_process_pool(settings))
        queue = ExplainQueue(settings.redis)
        stack.push_async_callback(queue.close)
        metrics = metrics or WorkerMetrics()
        zero(metrics)
        state = WorkerState(
            settings=settings, models=models, queue=queue, pool=pool, metrics=metrics
        )
        running = RunningWorker(worker=build_worker(state), state=state)
        running.task = asyncio.create_task(running.supervise(), name="arq-worker")
        folding = asyncio.create_task(
            fold_forever(metrics, settings.worker.fold_seconds), name="bucket-fold"
        )
        stack.push_async_callback(stop_loop, folding)
        upkeeping = asyncio.create_task(upkeep_forever(settings), name="history-upkeep")
        stack.push_async_callback(stop_loop, upkeeping)
        logger.info(
            "worker started: queue {}, {} LIME process(es), {} job(s) at a time",
            settings.redis.queue_name,
            settings.explain.processes,
            settings.worker.max_jobs,
        )
        try:
            yield running
        finally:
            # first the polling loop: arq's main loop must not outlive the pool that close()
            # drops (a worker stopped right after it started went on polling with no pool)
            await stop_loop(running.task)
            # then the running jobs, which arq puts back on the queue at once
            await close_worker(running.worker)
            logger.info("worker stopped")


async def stop_loop(task: asyncio.Task[None]) -> None:
    """Cancel the supervised loop until it has ended: a cancel that lands while arq's main
    loop is inside a Redis call can be swallowed there (seen in the tests), and the loop then
    polls on."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=1.0)
    if not task.cancelled() and task.exception() is not None:
        logger.warning("the worker loop ended with {!r}", task.exception())


async def close_worker(worker: Worker) -> None:
    """arq's Worker.close(): cancel the running jobs and wait for them, drop the heartbeat key
    and the worker's connections. A Redis that is gone is no error here. close() gathers the
    job tasks it has just cancelled, so with a job in flight it raises their CancelledError:
    that is ours only when this task itself is being cancelled. Taken for ours, it ended the
    supervisor, and with it `fraudsvc worker`, whenever Redis went away while a job ran (make
    drills, redis-restart, on a machine slow enough for a LIME job to be running then).
    With Redis gone, close() fails at the heartbeat key, before it closes the connections."""
    try:
        await worker.close()
        return
    except (RedisError, OSError):
        pass
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
    await finish_close(worker)


async def finish_close(worker: Worker) -> None:
    """What arq's Worker.close() leaves undone when it raises: the heartbeat key and the
    worker's own Redis connections, which would otherwise be left open for the garbage
    collector (a ResourceWarning in whatever runs then)."""
    pool = worker._pool  # None once close() got as far as closing it
    if pool is None:
        return
    with contextlib.suppress(RedisError, OSError):
        await pool.delete(worker.health_check_key)
    with contextlib.suppress(RedisError, OSError):
        await pool.aclose(close_connection_pool=True)
    worker._pool = None


async def check(settings: Settings) -> tuple[bool, str]:
    """Whether a worker heartbeat is fresh (for exec probes: `fraudsvc worker --check`)."""
    redis = connect(settings.redis)
    try:
        beat = await redis.get(health_check_key(settings))
    except (RedisError, OSError) as exc:
        return False, f"Redis unreachable: {exc}"
    finally:
        await redis.aclose(close_connection_pool=True)
    if beat is None:
        return False, f"no worker heartbeat on queue {settings.redis.queue_name}"
    return True, beat.decode()
