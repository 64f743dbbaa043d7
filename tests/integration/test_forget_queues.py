"""The suite cleans what its services leave in Redis: queues and the keys of their jobs."""

from __future__ import annotations

import secrets
from pathlib import Path

import redis

from tests.service import QUEUES, forget_queues, service_env


def test_a_runs_queues_and_their_pending_jobs_are_deleted_and_nothing_else(
    tmp_path: Path,
) -> None:
    env = service_env(tmp_path, "postgresql://unused")
    url, queue = env["REDIS_URL"], env["FRAUDSVC_QUEUE_NAME"]
    assert (url, queue) in QUEUES
    mine = {(url, queue)}
    QUEUES.discard((url, queue))  # cleaned here, not at the run's end
    job = f"explain:t-{secrets.token_hex(6)}"
    other = f"fraudsvc-test-unrelated:{secrets.token_hex(4)}"
    client = redis.Redis.from_url(url)
    try:
        client.zadd(queue, {job: 1.0})
        client.set(f"arq:job:{job}", b"payload", ex=600)
        client.set(f"arq:retry:{job}", b"1", ex=600)
        client.set(f"{queue}:health-check", b"ok", ex=600)
        client.set(other, b"kept", ex=600)
        assert forget_queues(mine) == 4
        assert not mine
        gone = [queue, f"{queue}:health-check", f"arq:job:{job}", f"arq:retry:{job}"]
        assert client.exists(*gone) == 0
        assert client.get(other) == b"kept"
    finally:
        client.delete(other, queue, f"arq:job:{job}", f"arq:retry:{job}")
        client.close()


def test_an_unreachable_server_is_skipped() -> None:
    closed = "redis://127.0.0.1:9/0"  # the discard port: nothing listens
    assert forget_queues({(closed, "fraudsvc-test:gone")}) == 0
