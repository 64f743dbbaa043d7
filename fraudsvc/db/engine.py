"""The one Piccolo engine of the process, configured from the settings at startup.

Piccolo finds its engine through the module named by PICCOLO_CONF; that module hands out `DB`
below. The engine is created without configuration and `configure()` gives it the DSN and pool
bounds from our settings, so that web, worker, migrations and tests all follow DATABASE_URL
through one object (Piccolo's engine is the one tolerated module-level client).
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
from loguru import logger
from piccolo.engine.postgres import PostgresEngine

from fraudsvc.settings import DatabaseSettings

os.environ.setdefault("PICCOLO_CONF", "fraudsvc.db.piccolo_conf")


class _Engine(PostgresEngine):
    """Piccolo's engine connects to check the server's version as soon as it is constructed,
    which here is at import time, with an empty configuration (libpq's defaults, not
    DATABASE_URL): a stray connection to whatever answers on localhost, and a warning where
    nothing does. start_pool() connects once the settings are known, and reports failures."""

    async def check_version(self) -> None:
        return None


DB = _Engine(config={}, extensions=())

# Errors that mean "the database cannot be reached or used right now" (a 503, not a bug).
OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, unreachable (ConnectionError is a subclass)
    socket.gaierror,
    TimeoutError,
    asyncpg.exceptions.PostgresConnectionError,  # SQLSTATE class 08: connection exceptions
    asyncpg.exceptions.OperatorInterventionError,  # class 57: shutdown, starting up, timeout
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.ReadOnlySQLTransactionError,  # failover in progress
    asyncpg.exceptions.InterfaceError,  # the client's side of a closed connection
    # a connection whose statement was cut off by a dropped server is left "in another
    # operation"; seen in the postgres-restart drill
    asyncpg.exceptions.InternalClientError,
)


class DatabaseUnavailable(RuntimeError):
    """PostgreSQL could not be reached or used; the caller should answer 503."""


def configure(settings: DatabaseSettings) -> PostgresEngine:
    DB.config = {
        "dsn": settings.url,
        "timeout": settings.timeout_seconds,
        "command_timeout": settings.timeout_seconds,
    }
    return DB


async def _keep_session(_: asyncpg.Connection) -> None:
    """Pool reset on release, minus asyncpg's session reset query (advisory unlock, CLOSE ALL,
    UNLISTEN, RESET ALL): fraudsvc keeps no session state on pooled connections, and that query
    doubled the round trips of a request (measured by make bench). asyncpg still rolls back an
    open transaction before this runs."""


def pool() -> asyncpg.Pool:
    """The engine's pool; DatabaseUnavailable (a 503) when it is not open."""
    if DB.pool is None:
        raise DatabaseUnavailable("the database pool is not open")
    return DB.pool


class ScoringPool:
    """The web process's second pool, for the scoring path's two statements alone.

    Its connections plan prepared statements once (`plan_cache_mode = force_generic_plan`):
    the window read is a union of lateral index probes whose plan does not depend on the
    values, and PostgreSQL's default kept re-planning it for every request (custom plans), which
    cost more than executing it (make bench, section http). Everything else (labels, lists,
    rules, review pages, the drift monitor's range reads, Piccolo) stays on the engine's pool
    with custom plans, where values do matter, and cannot take a connection a payment waits
    for. Outside the web process this pool is not opened and the scoring statements use the
    engine's pool.
    """

    pool: asyncpg.Pool | None = None


SCORING = ScoringPool()


@dataclass
class PoolUse:
    """How often statements took a connection from one pool and how long they waited for it
    (`queries._statement` counts; /metrics shows them with the pool's size, so a saturated pool
    is told from a slow database)."""

    acquires: int = 0
    wait_seconds: float = 0.0


USE = {"scoring": PoolUse(), "side": PoolUse(), "main": PoolUse()}
"""Per pool: in the web process `scoring` is SCORING.pool and `side` the engine's pool; in any
other process the engine's pool is the only one, `main`."""


def _engine_pool_name() -> str:
    return "main" if SCORING.pool is None else "side"


def use_of(pool: asyncpg.Pool) -> PoolUse:
    return USE["scoring" if pool is SCORING.pool else _engine_pool_name()]


@dataclass(frozen=True)
class PoolState:
    name: str
    in_use: int
    idle: int
    max: int
    use: PoolUse


def pool_states() -> list[PoolState]:
    """The open pools' connections (in use, idle, the bound) and their waits."""
    states = []
    for name, pool in (("scoring", SCORING.pool), (_engine_pool_name(), DB.pool)):
        if pool is None:
            continue
        size, idle = pool.get_size(), pool.get_idle_size()
        states.append(PoolState(name, size - idle, idle, pool.get_max_size(), USE[name]))
    return states


GENERIC_PLANS = {"plan_cache_mode": "force_generic_plan", "enable_seqscan": "off", "jit": "off"}
"""The scoring pool's session settings. The two statements are index probes by design; a generic
plan is made once per connection, so one made while a partition was empty or unanalysed (the
DEFAULT one, a new month) would scan that partition for the connection's life as it fills:
make bench found every window read scanning 18,000 rows of DEFAULT this way (100 % of a core
in PostgreSQL). With sequential scans off, the plan probes the indexes whatever the statistics
said when it was made. JIT is off: a generic plan's estimates (and sequential scans priced out
of reach) pass `jit_above_cost`, and compiling the plan on every execution took 7.7 ms of a
window read that runs in 0.44 ms without it (measured on the demo's database)."""


def _scoring_pool() -> asyncpg.Pool | None:
    return SCORING.pool


async def replan(
    interval: float, pool_of: Callable[[], asyncpg.Pool | None] = _scoring_pool
) -> None:
    """Every `interval` seconds, drop the scoring pool's prepared statements (asyncpg's
    `reload_schema_state` clears every pooled connection's cache), so that each connection
    prepares them again on its next use and PostgreSQL makes their generic plans anew, with the
    tables' current sizes. No reconnection: replacing the connections instead put ten
    reconnects in a few milliseconds of traffic (p99 86 to 133 ms in those runs).

    A generic plan is made once per connection and kept until its tables are analysed again.
    A month's partition is created empty ahead of its time; plans made while it was empty
    chose, for the window read's raw rows, an index that walks the whole partition (its primary
    key, whose first column is the id), so as the month filled every read walked more of it:
    PostgreSQL's CPU a request grew from 1.4 to 10 ms in minutes (make bench; EXPLAIN ANALYZE on
    a connection prepared right after the backfill). Autovacuum analyses a filling partition
    early, which invalidates those plans, but it may be off or late (it is off on the
    benchmark's server); this bounds a plan's age either way, for about one prepare per
    connection and interval. `pool_of` gives another pool instead: make bench's bare endpoint
    renews its own on the same interval, so both keep plans of the same age."""
    while True:
        await asyncio.sleep(interval)
        pool = pool_of()
        if pool is None:
            continue
        try:
            async with pool.acquire() as connection:
                await connection.reload_schema_state()
        except OUTAGE_ERRORS as exc:  # PostgreSQL away: the next interval tries again
            logger.debug("scoring plans not renewed: {}", exc)


async def _create(min_size: int, max_size: int, **extra: Any) -> tuple[asyncpg.Pool, bool]:
    """A pool, and whether PostgreSQL answered (if not, the pool connects lazily)."""
    options = {**DB.config, "max_size": max_size, "reset": _keep_session, **extra}
    try:
        return await asyncpg.create_pool(**options, min_size=min_size), True
    except OUTAGE_ERRORS:
        return await asyncpg.create_pool(**options, min_size=0), False


async def start_pool(settings: DatabaseSettings, scoring: bool = False) -> bool:
    """Open the pool (and with `scoring`, the scoring pool); returns False when PostgreSQL is
    unreachable (the pools then connect lazily, so the service starts, reports it in /readyz
    and answers 503 until it is back)."""
    configure(settings)
    await close_pool()
    if not scoring:
        DB.pool, ok = await _create(settings.pool_min, settings.pool_max)
        return ok
    SCORING.pool, ok = await _create(
        settings.pool_min, settings.pool_max, server_settings=GENERIC_PLANS
    )
    DB.pool, side_ok = await _create(1, settings.side_pool_max)
    return ok and side_ok


async def close_pool() -> None:
    if SCORING.pool is not None:
        pool, SCORING.pool = SCORING.pool, None
        await pool.close()
    if DB.pool is not None:
        await DB.close_connection_pool()
