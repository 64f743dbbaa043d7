"""Run the real service in the test's event loop, and a TCP proxy to cut its database.

`running_service` serves `serve_app(settings)`, what `fraudsvc web` serves, with uvicorn on a free
loopback port and hands back an httpx client for it: real sockets, real lifespan, the real
PostgreSQL and Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlparse

import httpx
import uvicorn

from fraudsvc.app import serve_app
from fraudsvc.settings import Settings

API_KEY = "test-key-" + secrets.token_hex(8)
ADMIN_KEY = "test-admin-" + secrets.token_hex(8)
FAST_LIME = {"FRAUDSVC_LIME_NUM_SAMPLES": "500", "FRAUDSVC_EXPLAIN_PROCESSES": "1"}


def transaction(**overrides: Any) -> dict[str, Any]:
    """A valid scoring request with fresh ids (its own customer and terminal: no history)."""
    return {
        "transaction_id": "t-" + secrets.token_hex(6),
        "timestamp": "2026-03-02T12:30:00Z",
        "customer_id": "C-" + secrets.token_hex(4),
        "terminal_id": "T-" + secrets.token_hex(4),
        "amount": 42.0,
        **overrides,
    }


QUEUES: set[tuple[str, str]] = set()
"""(Redis URL, queue name) of every service this process configured, for `forget_queues`."""


def service_env(data_dir: Path, database_url: str, **extra: str) -> dict[str, str]:
    redis_url = os.environ.get("FRAUDSVC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    queue = f"fraudsvc-test:{secrets.token_hex(4)}"
    QUEUES.add((redis_url, queue))
    return {
        "FRAUDSVC_DATA_DIR": str(data_dir),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "FRAUDSVC_QUEUE_NAME": queue,
        "FRAUDSVC_API_KEYS": API_KEY,
        "FRAUDSVC_ADMIN_KEYS": ADMIN_KEY,
        "FRAUDSVC_MODEL_POLL_SECONDS": "3600",
        "FRAUDSVC_DB_POOL_MIN": "1",
        "FRAUDSVC_DB_POOL_MAX": "8",
        "FRAUDSVC_DB_TIMEOUT_SECONDS": "2",
        "FRAUDSVC_WORKER_METRICS_PORT": "0",  # no fixed port: a test that needs one picks one
        # one process hosts many services in turn: a frozen heap would hold each one's garbage
        # until its exit and free it inside some later test (tests/unit/test_runtime.py tests it)
        "FRAUDSVC_GC_FREEZE": "false",
        **extra,
    }


def forget_queues(queues: set[tuple[str, str]] | None = None) -> int:
    """Delete what the run's services left in Redis: each queue, its health-check key and the
    keys of the jobs still in it (most tests enqueue explanations with no worker to take
    them; arq keeps a job's key for a day, and the next run's jobs of the same transaction
    ids would find it and not be enqueued): of `queues`, by default every queue of the run.
    Returns the number of keys deleted."""
    import redis

    chosen = QUEUES if queues is None else queues
    deleted = 0
    for url, queue in sorted(chosen):
        client = redis.Redis.from_url(url)
        try:
            ids = [i.decode() for i in cast(list[bytes], client.zrange(queue, 0, -1))]
            keys = [queue, f"{queue}:health-check"]
            keys += [f"arq:{kind}:{i}" for i in ids for kind in ("job", "retry", "in-progress")]
            for start in range(0, len(keys), 500):
                deleted += cast(int, client.delete(*keys[start : start + 500]))
        except redis.RedisError:  # a server a test stopped: nothing of it to clean
            continue
        finally:
            client.close()
    chosen.clear()
    return deleted


@asynccontextmanager
async def running_service(
    settings: Settings, with_worker: bool = False
) -> AsyncIterator[httpx.AsyncClient]:
    config = uvicorn.Config(
        serve_app(settings, with_worker=with_worker),
        host="127.0.0.1",
        port=0,
        lifespan="on",
        log_config=None,
        access_log=False,
        loop="none",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(600):
            if server.started or task.done():
                break
            await asyncio.sleep(0.05)
        if task.done():
            task.result()
        assert server.started, "the service did not start within 30 s"
        port = server.servers[0].sockets[0].getsockname()[1]
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": API_KEY}, timeout=30
        ) as client:
            yield client
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 30)


@dataclass
class TcpProxy:
    """Forwards a loopback port to PostgreSQL; `cut()` drops every connection and refuses new
    ones, `restore()` listens again on the same port."""

    target_port: int
    target_host: str = "127.0.0.1"
    port: int = 0
    server: asyncio.Server | None = None
    links: set[asyncio.StreamWriter] = field(default_factory=set)

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            writer.close()
            return
        self.links |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        self.links -= {writer, up_writer}

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for link in list(self.links):
            link.transport.abort()
        self.links.clear()
        await self.server.wait_closed()

    async def restore(self) -> None:
        await self.start()


async def proxied(database_url: str) -> tuple[TcpProxy, str]:
    """A started proxy in front of the database, and the URL that goes through it."""
    target = urlparse(database_url)
    proxy = TcpProxy(target_port=target.port or 5432)
    await proxy.start()
    return proxy, target._replace(netloc=f"{target.username}@127.0.0.1:{proxy.port}").geturl()
