"""The producer side of the explanation queue, used by the web process and the sweep.

The Redis connection is lazy: the service starts when Redis is down, reports it in /readyz, and
`enqueue` answers False instead of raising, so a score is never refused for Redis's sake. The
explanation row stays pending in PostgreSQL and the sweep enqueues it once Redis is back.
"""

from __future__ import annotations

from typing import Literal

import msgspec
from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix, job_key_prefix
from loguru import logger
from redis.asyncio import ConnectionPool
from redis.exceptions import RedisError

from fraudsvc.jobs.payloads import EXPLAIN_FUNCTION, ExplainJob, deserialize, job_id, serialize
from fraudsvc.schemas import CheckOut
from fraudsvc.settings import RedisSettings

CONNECT_TIMEOUT = 1.0
EnqueueOutcome = Literal["queued", "already_queued", "unavailable"]


def connect(settings: RedisSettings) -> ArqRedis:
    pool = ConnectionPool.from_url(
        settings.url,
        socket_connect_timeout=CONNECT_TIMEOUT,
        socket_timeout=CONNECT_TIMEOUT * 2,
        retry_on_timeout=False,
    )
    return ArqRedis(
        pool,
        job_serializer=serialize,
        job_deserializer=deserialize,
        default_queue_name=settings.queue_name,
    )


class ExplainQueue:
    def __init__(self, settings: RedisSettings) -> None:
        self.settings = settings
        self.redis = connect(settings)
        self.failures = 0

    async def enqueue(self, job: ExplainJob) -> EnqueueOutcome:
        """Queue the job; `already_queued` when its id is queued or running (arq refuses it),
        `unavailable` when Redis cannot be reached (the row stays pending for the sweep)."""
        try:
            queued = await self.redis.enqueue_job(
                EXPLAIN_FUNCTION,
                msgspec.to_builtins(job),
                _job_id=job_id(job.transaction_id),
                _queue_name=self.settings.queue_name,
            )
        except (RedisError, OSError) as exc:
            self.failures += 1
            logger.warning(
                "could not enqueue the explanation of {} (left pending for the sweep): {}",
                job.transaction_id,
                exc,
            )
            return "unavailable"
        return "queued" if queued is not None else "already_queued"

    async def drop_orphan(self, transaction_id: str) -> bool:
        """Delete a job key that no queue entry and no running job refers to any more.

        arq refuses a job id while its key exists; if the queue's entry was lost but the key
        survived (a partial Redis loss), the explanation could never be enqueued again until the
        key expired, a day later. True when such a key was found and deleted."""
        jid = job_id(transaction_id)
        try:
            if not await self.redis.exists(job_key_prefix + jid):
                return False
            queued = await self.redis.zscore(self.settings.queue_name, jid)
            running = await self.redis.exists(in_progress_key_prefix + jid)
            if queued is not None or running:
                return False
            await self.redis.delete(job_key_prefix + jid)
        except (RedisError, OSError):
            return False
        logger.warning("dropped the orphaned job key of {} (no queue entry)", transaction_id)
        return True

    async def depth(self) -> int:
        """Jobs waiting in the queue (arq's queue is a sorted set: its size)."""
        size: int = await self.redis.zcard(self.settings.queue_name)
        return size

    async def check(self) -> CheckOut:
        try:
            depth = await self.depth()
        except (RedisError, OSError) as exc:
            return CheckOut(
                ok=False,
                detail=f"unreachable ({exc}); scores are still served, explanations wait",
            )
        return CheckOut(ok=True, detail=f"reachable, {depth} explanation job(s) queued")

    async def close(self) -> None:
        await self.redis.aclose(close_connection_pool=True)
