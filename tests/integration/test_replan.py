"""The scoring pool's prepared statements are dropped on a schedule, so their generic plans are
made again with the tables' current sizes (`engine.replan`, FRAUDSVC_DB_REPLAN_SECONDS)."""

from __future__ import annotations

import asyncio

import asyncpg

from fraudsvc.db import engine, queries
from fraudsvc.processes import free_port
from fraudsvc.settings import Settings
from tests.bench.bare import Bare

PROBE = "SELECT count(*) FROM transactions WHERE customer_id = $1"


async def prepared_here() -> tuple[int, set[str]]:
    """The scoring connection's backend and the statements it has prepared."""
    pool = engine.SCORING.pool
    assert pool is not None
    async with pool.acquire() as connection:
        await connection.fetchval(PROBE, "C1")  # through asyncpg's statement cache
        pid: int = connection.get_server_pid()
        names = await connection.fetch(
            "SELECT name FROM pg_prepared_statements WHERE statement LIKE 'SELECT count(*)%'"
        )
        return pid, {r["name"] for r in names}


async def test_the_scoring_statements_are_prepared_again_every_interval(
    database_url: str,
) -> None:
    settings = Settings.from_env(
        {
            "DATABASE_URL": database_url,
            "FRAUDSVC_DB_POOL_MIN": "1",
            "FRAUDSVC_DB_POOL_MAX": "1",
            "FRAUDSVC_DB_REPLAN_SECONDS": "0.2",
        }
    )
    assert settings.database.replan_seconds == 0.2
    await engine.start_pool(settings.database, scoring=True)
    task = asyncio.create_task(engine.replan(settings.database.replan_seconds))
    try:
        pid, first = await prepared_here()
        assert len(first) == 1
        assert await prepared_here() == (pid, first)  # kept between intervals
        await asyncio.sleep(0.5)
        again, second = await prepared_here()
        assert again == pid  # the same connection: no reconnect on a request's path
        assert second  # prepared anew, and the old one deallocated
        assert not second & first
        assert await queries._run("fetchval", "SELECT 1", scoring=True) == 1
    finally:
        task.cancel()
        await engine.close_pool()


async def test_an_unreachable_server_does_not_end_it() -> None:
    # nobody listens on the port: the pools connect lazily and every renewal is refused
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"
    settings = Settings.from_env({"DATABASE_URL": url, "FRAUDSVC_DB_POOL_MIN": "1"})
    assert not await engine.start_pool(settings.database, scoring=True)
    assert engine.SCORING.pool is not None
    task = asyncio.create_task(engine.replan(0.05))
    try:
        await asyncio.sleep(0.2)
        assert not task.done()
    finally:
        task.cancel()
        await engine.close_pool()


def test_zero_turns_it_off() -> None:
    assert Settings.from_env({"FRAUDSVC_DB_REPLAN_SECONDS": "0"}).database.replan_seconds == 0


async def statements_of(pool: asyncpg.Pool) -> tuple[int, set[str]]:
    async with pool.acquire() as connection:
        await connection.fetchval(PROBE, "C1")
        names = await connection.fetch(
            "SELECT name FROM pg_prepared_statements WHERE statement LIKE 'SELECT count(*)%'"
        )
        return connection.get_server_pid(), {r["name"] for r in names}


async def test_the_bare_endpoint_renews_its_plans_as_the_service_does(database_url: str) -> None:
    # make bench's floor: a plan of the same age as the service's, or the comparison drifts
    app = Bare(database_url, replan_seconds=0.2)
    inbox: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    sent: list[dict[str, object]] = []
    started = asyncio.Event()

    async def send(message: dict[str, object]) -> None:
        sent.append(message)
        started.set()

    await inbox.put({"type": "lifespan.startup"})
    lifespan = asyncio.create_task(app({"type": "lifespan"}, inbox.get, send))
    try:
        await asyncio.wait_for(started.wait(), 10)
        assert sent[0]["type"] == "lifespan.startup.complete"
        assert app.pool is not None
        pid, first = await statements_of(app.pool)
        await asyncio.sleep(0.5)
        again, second = await statements_of(app.pool)
        assert again == pid  # the same connections
        assert second
        assert not second & first
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await asyncio.wait_for(lifespan, 10)
    assert app.replanning is not None
    assert app.replanning.cancelled()
