"""Section `storage`: bytes per stored row in PostgreSQL and per queued job in Redis, and the
time of a prune.

The sizing arithmetic of deploy/README.md needs b (bytes per scored transaction: its
transaction row, its prediction with the feature vector, their indexes) and j (Redis bytes per
queued explanation job). Both are read off the benchmark's own stores after the load: the
tables with `pg_total_relation_size` (heap, TOAST and indexes) over their row counts, and Redis
by queueing `JOBS` real explain jobs on a scratch queue that no worker reads, then summing
`MEMORY USAGE` of their keys and of the queue's sorted set. A partitioned table's size is the sum
of its partitions' (`pg_partition_tree`).

The prune is timed on the benchmark's own database, inside a transaction that is rolled back
(PostgreSQL's DDL is transactional): the same locks, detaches, drops and deletes as a real one,
and the sections after this one still find every row. It keeps `PRUNE_KEEP_DAYS` of the
history's time and counts the backfill's labels as old (`now` a year after the history), as the
daily run would see them once the kept days have passed.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import asyncpg
from arq.constants import job_key_prefix

from fraudsvc.db import retention
from fraudsvc.features import DECLARATION
from fraudsvc.jobs.payloads import ExplainJob, job_id
from fraudsvc.jobs.queue import ExplainQueue
from fraudsvc.settings import RedisSettings
from tests.bench.environment import REDIS_URL, Bench
from tests.bench.report import Report

SECTION = "storage: bytes per row and per queued job"
TABLES = (
    "transaction_ids",
    "transactions",
    "predictions",
    "explanations",
    "labels",
    "review_cases",
    "feature_buckets",
)
PRUNE_KEEP_DAYS = 60
JOBS = 1_000
# a W3C traceparent as the web process stores it with a sampled trace
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


async def table_sizes(database_url: str) -> dict[str, dict[str, int]]:
    connection = await asyncpg.connect(database_url)
    try:
        sizes: dict[str, dict[str, int]] = {}
        for table in TABLES:
            # a plain table has no partition tree: then its own sizes
            row = await connection.fetchrow(
                f"SELECT (SELECT count(*) FROM {table}) AS rows, coalesce("
                "(SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree($1) "
                "WHERE isleaf), pg_total_relation_size($1))::bigint AS total, coalesce("
                "(SELECT sum(pg_indexes_size(relid)) FROM pg_partition_tree($1) WHERE isleaf), "
                "pg_indexes_size($1))::bigint AS indexes",
                table,
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


class _RolledBack(Exception):
    """Ends the timed prune's transaction with a rollback."""


async def prune_timing(database_url: str) -> dict[str, Any]:
    """A dry run and a real prune (rolled back) of the benchmark's database, timed."""
    connection = await asyncpg.connect(database_url)
    try:
        newest = await connection.fetchval("SELECT max(ts) FROM transactions")
        later = newest + timedelta(days=365)
        dry = await retention.prune(
            connection, PRUNE_KEEP_DAYS, DECLARATION, dry_run=True, now=later
        )
        started = time.perf_counter()
        report = None
        try:
            async with connection.transaction():
                report = await retention.prune(connection, PRUNE_KEEP_DAYS, DECLARATION, now=later)
                raise _RolledBack
        except _RolledBack:
            pass
        seconds = time.perf_counter() - started
        assert report is not None
    finally:
        await connection.close()
    return {
        "keep_days": PRUNE_KEEP_DAYS,
        "dry_run_seconds": dry.seconds,
        "prune_seconds": seconds,
        "months_dropped": [m.name for m in report.dropped],
        "months_kept": {m.name: m.kept_because for m in report.months if not m.dropped},
        "transactions_dropped": sum(m.transactions for m in report.dropped),
        "predictions_dropped": sum(m.predictions for m in report.dropped),
        "labels_dropped": sum(m.labels for m in report.dropped),
        "buckets_dropped": report.buckets,
        "lock_ms": sum(m.lock_seconds for m in report.dropped) * 1e3,
        "lines": report.lines(),
    }


async def measure(
    bench: Bench, database_url: str
) -> tuple[dict[str, dict[str, int]], dict[str, float], dict[str, Any]]:
    sizes = await table_sizes(database_url)
    return sizes, await queued_job_bytes(bench), await prune_timing(database_url)


def run(bench: Bench, report: Report) -> None:
    # bench.web() builds the database with an event loop of its own: call it outside this one
    sizes, redis_bytes, pruned = asyncio.run(measure(bench, bench.web().database_url))
    report.data["storage"] = {"tables": sizes, "redis": redis_bytes, "prune": pruned}
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
    transactions = sizes["transactions"]["rows"] or 1
    scored = sizes["predictions"]["rows"]
    history = ("transaction_ids", "transactions", "labels", "feature_buckets")
    report.table(
        SECTION,
        "PostgreSQL: per stored transaction",
        ["measure", "value"],
        [
            [
                "bytes per transaction: its key, its row, labels and feature buckets",
                f"{sum(sizes[t]['bytes'] for t in history) / transactions:,.0f}",
            ],
            [
                "of which indexes",
                f"{sum(sizes[t]['index_bytes'] for t in history) / transactions:,.0f}",
            ],
            [
                "of which the key kept after a prune (transaction_ids)",
                f"{sizes['transaction_ids']['bytes'] / transactions:,.0f}",
            ],
            [
                "feature bucket rows per transaction",
                f"{sizes['feature_buckets']['rows'] / transactions:,.2f}",
            ],
            [
                "bytes per prediction (a scored transaction's row and its indexes)",
                f"{sizes['predictions']['bytes'] / scored:,.0f}" if scored else "no scores",
            ],
        ],
        "Buckets are shared by the transactions of one entity and time bucket; their count "
        "per transaction falls as traffic per entity grows.",
    )
    report.table(
        SECTION,
        f"Retention: a prune keeping {pruned['keep_days']} days (timed, then rolled back)",
        ["measure", "value"],
        [
            ["months dropped", ", ".join(pruned["months_dropped"]) or "none"],
            ["transactions dropped", f"{pruned['transactions_dropped']:,}"],
            ["predictions dropped", f"{pruned['predictions_dropped']:,}"],
            ["labels dropped", f"{pruned['labels_dropped']:,}"],
            ["feature buckets deleted", f"{pruned['buckets_dropped']:,}"],
            ["prune, seconds", f"{pruned['prune_seconds']:.2f}"],
            ["of which writes waited (parent tables locked), ms", f"{pruned['lock_ms']:.0f}"],
            ["dry run, seconds", f"{pruned['dry_run_seconds']:.2f}"],
        ],
        "Months are dropped whole (DETACH and DROP of a partition: no row-by-row DELETE); the "
        "feature buckets of the dropped months are deleted row by row (unpartitioned table). "
        + "; ".join(f"kept {name}: {why}" for name, why in pruned["months_kept"].items()),
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
