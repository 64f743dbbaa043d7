"""The one Piccolo engine of the process, configured from the settings at startup.

Piccolo finds its engine through the module named by PICCOLO_CONF; that module hands out `DB`
below. The engine is created without configuration and `configure()` gives it the DSN and pool
bounds from our settings, so that web, worker, migrations and tests all follow DATABASE_URL
through one object (Piccolo's engine is the one tolerated module-level client).
"""

from __future__ import annotations

import os
import socket

import asyncpg
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


async def start_pool(settings: DatabaseSettings) -> bool:
    """Open the pool; returns False when PostgreSQL is unreachable (the pool then connects
    lazily, so the service starts, reports it in /readyz and answers 503 until it is back)."""
    configure(settings)
    if DB.pool is not None:
        await DB.close_connection_pool()
    try:
        DB.pool = await asyncpg.create_pool(
            **DB.config,
            min_size=settings.pool_min,
            max_size=settings.pool_max,
            reset=_keep_session,
        )
        return True
    except OUTAGE_ERRORS:
        DB.pool = await asyncpg.create_pool(
            **DB.config, min_size=0, max_size=settings.pool_max, reset=_keep_session
        )
        return False


async def close_pool() -> None:
    if DB.pool is not None:
        await DB.close_connection_pool()
