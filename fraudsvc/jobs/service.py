"""`fraudsvc worker`: the worker process, with its own small HTTP server for probes.

GET /healthz: the worker loop runs (liveness). GET /readyz: PostgreSQL and Redis answer.
The same server exposes /metrics (Prometheus text) once telemetry is set up.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from aiohttp import web
from loguru import logger

from fraudsvc.api.health import database_check
from fraudsvc.jobs.worker import RunningWorker, running_worker
from fraudsvc.jobs.worker_metrics import refresh_all
from fraudsvc.model.loader import ModelHolder
from fraudsvc.resources import open_database
from fraudsvc.schemas import CheckOut, ReadyOut, encode
from fraudsvc.settings import Settings
from fraudsvc.telemetry.pools import observe_pools

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(body: object, status: int = 200) -> web.Response:
    return web.Response(body=encode(body), status=status, content_type="application/json")


def probe_app(
    running: RunningWorker, extra_routes: dict[str, Handler] | None = None
) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        if running.alive:
            return _json({"status": "ok"})
        return _json({"status": "stopped"}, status=503)

    async def readyz(_: web.Request) -> web.Response:
        checks = {
            "database": await database_check(),
            "redis": await running.state.queue.check(),
            "worker": CheckOut(ok=running.alive, detail="running" if running.alive else "stopped"),
        }
        ready = all(c.ok for c in checks.values())
        return _json(ReadyOut(ready=ready, checks=checks), status=200 if ready else 503)

    async def metrics(request: web.Request) -> web.Response:
        await refresh_all(running.state)
        observe_pools(running.state.metrics)
        content, headers = running.state.metrics.render(request.headers.getall("Accept", []))
        return web.Response(body=content, headers=headers)

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    for path, handler in (extra_routes or {}).items():
        app.router.add_get(path, handler)
    return app


@asynccontextmanager
async def serving(app: web.Application, host: str, port: int) -> AsyncIterator[None]:
    if port == 0:
        yield
        return
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    logger.info("worker probes and metrics on http://{}:{}", host, port)
    try:
        yield
    finally:
        await runner.cleanup()


async def run(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with open_database(settings):
        models = ModelHolder(settings)  # versions are loaded on demand, as jobs name them
        async with running_worker(settings, models) as running:
            app = probe_app(running)
            async with serving(app, settings.worker.metrics_host, settings.worker.metrics_port):
                stopped = asyncio.create_task(stop.wait())
                await asyncio.wait({stopped, running.task}, return_when=asyncio.FIRST_COMPLETED)
                stopped.cancel()
                if running.task.done() and not running.task.cancelled():
                    running.task.result()  # surface why the worker loop ended
