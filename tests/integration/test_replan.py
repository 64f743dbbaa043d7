"""The scoring pool's connections are replaced on a schedule, so their generic plans are made
again with the tables' current sizes (`engine.replan`, FRAUDSVC_DB_REPLAN_SECONDS)."""

from __future__ import annotations

import asyncio

from fraudsvc.db import engine, queries
from fraudsvc.settings import Settings


async def scoring_backend() -> int:
    pool = engine.SCORING.pool
    assert pool is not None
    async with pool.acquire() as connection:
        pid: int = await connection.fetchval("SELECT pg_backend_pid()")
        mode = await connection.fetchval("SHOW plan_cache_mode")
        assert mode == "force_generic_plan"  # a fresh one has the scoring settings too
        return pid


async def test_the_scoring_connections_are_replaced_every_interval(database_url: str) -> None:
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
        first = await scoring_backend()
        assert await scoring_backend() == first  # kept between intervals
        await asyncio.sleep(0.5)
        second = await scoring_backend()
        assert second != first
        # the side pool is left alone, and statements still run on the new connection
        assert await queries._run("fetchval", "SELECT 1", scoring=True) == 1
    finally:
        task.cancel()
        await engine.close_pool()


def test_zero_turns_it_off() -> None:
    assert Settings.from_env({"FRAUDSVC_DB_REPLAN_SECONDS": "0"}).database.replan_seconds == 0
