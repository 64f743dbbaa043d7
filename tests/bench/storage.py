"""Section `storage`: bytes per stored row in PostgreSQL and per queued job in Redis.

The sizing arithmetic of deploy/README.md needs b (bytes per scored transaction: its
transaction row, its prediction with the feature vector, their indexes) and j (Redis bytes per
queued explanation job). Both are read off the benchmark's own stores after the load: the
tables with `pg_total_relation_size` (heap, TOAST and indexes) over their row counts, and Redis
by queueing `JOBS` real explain jobs on a scratch queue that no worker reads, then summing
`MEMORY USAGE` of their keys and of the queue's sorted set.
"""

from __future__ import annotations

import asyncio

import asyncpg
from arq.constants import job_key_prefix

from fraudsvc.jobs.payloads import ExplainJob, job_id
from fraudsvc.jobs.queue import ExplainQueue
from fraudsvc.settings import RedisSettings
from tests.bench.environment import REDIS_URL, Bench
from tests.bench.report import Report

SECTION = "storage: bytes per row and per queued job"
TABLES = ("transactions", "predictions", "explanations", "labels")
JOBS = 1_000
# a W3C traceparent as the web process stores it with a sampled trace
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


async def table_sizes(database_url: str) -> dict[str, dict[str, int]]:
    connection = await asyncpg.connect(database_url)
    try:
        sizes: dict[str, dict[str, int]] = {}
        for table in TABLES:
            row = await connection.fetchrow(
                f"SELECT count(*) AS rows, pg_total_relation_size('{table}') AS total, "
                f"pg_indexes_size('{table}') AS indexes FROM {table}"
            )
            assert row is not None
            sizes[table] = {
                "rows": row["rows"],
                "bytes": row["total"],
                "index_bytes": row["indexes"],
            }
        return sizes
    finally:
        await connection.close()


async def queued_job_bytes(bench: Bench) -> dict[str, float]:
    queue = ExplainQueue(RedisSettings(url=REDIS_URL, queue_name=f"{bench.queue_name}:storage"))
    ids = [f"{bench.id_prefix}-storage-{i:06d}" for i in range(JOBS)]
    keys = [job_key_prefix + job_id(t) for t in ids]
    try:
        for transaction_id in ids:
            job = ExplainJob(transaction_id, f"corr-{transaction_id}", {"traceparent": TRACEPARENT})
            assert await queue.enqueue(job) == "queued"
        job_bytes = 0
        for key in keys:
            job_bytes += int(await queue.redis.memory_usage(key, samples=0) or 0)
        zset_bytes = int(await queue.redis.memory_usage(queue.settings.queue_name, samples=0) or 0)
        payload = len(await queue.redis.get(keys[-1]) or b"")
    finally:
        for start in range(0, len(keys), 500):
            await queue.redis.delete(*keys[start : start + 500])
        await queue.redis.delete(queue.settings.queue_name)
        await queue.close()
    return {
        "jobs": JOBS,
        "job_key_bytes": job_bytes / JOBS,
        "queue_entry_bytes": zset_bytes / JOBS,
        "per_job_bytes": (job_bytes + zset_bytes) / JOBS,
        "payload_bytes": payload,
    }


async def measure(
    bench: Bench, database_url: str
) -> tuple[dict[str, dict[str, int]], dict[str, float]]:
    return await table_sizes(database_url), await queued_job_bytes(bench)


def run(bench: Bench, report: Report) -> None:
    # bench.web() builds the database with an event loop of its own: call it outside this one
    sizes, redis_bytes = asyncio.run(measure(bench, bench.web().database_url))
    report.data["storage"] = {"tables": sizes, "redis": redis_bytes}
    rows = []
    for table, size in sizes.items():
        per_row = size["bytes"] / size["rows"] if size["rows"] else float("nan")
        rows.append(
            [
                table,
                f"{size['rows']:,}",
                f"{size['bytes'] / 2**20:,.1f}",
                f"{size['index_bytes'] / 2**20:,.1f}",
                f"{per_row:,.0f}",
            ]
        )
    report.table(
        SECTION,
        "PostgreSQL: bytes per row after the load (heap, TOAST and indexes)",
        ["table", "rows", "MiB", "of which indexes MiB", "bytes/row"],
        rows,
        "The transactions table holds the backfilled history and the scored transactions; only "
        "the scored ones have a prediction. A scored transaction costs its transactions row "
        "plus its predictions row; an explained one adds its explanations row.",
    )
    report.table(
        SECTION,
        "Redis: bytes per queued explanation job",
        ["measure", "bytes"],
        [
            ["job key (arq:job:<id>), MEMORY USAGE", f"{redis_bytes['job_key_bytes']:,.0f}"],
            ["its entry in the queue's sorted set", f"{redis_bytes['queue_entry_bytes']:,.0f}"],
            ["per queued job, in all", f"{redis_bytes['per_job_bytes']:,.0f}"],
            [
                "the job's stored value (arq's JSON envelope)",
                f"{redis_bytes['payload_bytes']:,.0f}",
            ],
        ],
        f"{JOBS:,} real explain jobs (with a trace context) queued on a scratch queue that no "
        "worker reads, measured, then deleted. The worker keeps no results (keep_result=0), so "
        "a job's keys leave Redis when it finishes.",
    )
