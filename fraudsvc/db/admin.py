"""Database administration: create the database if missing, apply the Piccolo migrations."""

from __future__ import annotations

from urllib.parse import urlparse, urlunparse

import asyncpg
from loguru import logger

from fraudsvc.db import engine
from fraudsvc.settings import DatabaseSettings


def _with_database(url: str, name: str) -> str:
    return urlunparse(urlparse(url)._replace(path=f"/{name}"))


def database_name(url: str) -> str:
    return urlparse(url).path.lstrip("/") or "postgres"


async def ensure_database(url: str) -> bool:
    """Create the database named in `url` if it does not exist; True when it was created."""
    try:
        connection = await asyncpg.connect(url)
    except asyncpg.exceptions.InvalidCatalogNameError:
        name = database_name(url)
        admin = await asyncpg.connect(_with_database(url, "postgres"))
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        except asyncpg.exceptions.DuplicateDatabaseError:
            return False
        finally:
            await admin.close()
        logger.info("created database {}", name)
        return True
    await connection.close()
    return False


async def drop_database(url: str) -> None:
    name = database_name(url)
    admin = await asyncpg.connect(_with_database(url, "postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


MIGRATION_LOCK = 0x6672617564  # pg_advisory_lock key: one migrator at a time


async def migrate(settings: DatabaseSettings) -> list[str]:
    """Create the database if needed and apply every pending migration; returns all applied.

    An advisory lock serialises concurrent runs (a Kubernetes Job and a Compose service, say):
    Piccolo records a migration only after running it, so two runs could otherwise race.
    """
    from piccolo.apps.migrations.commands.forwards import ForwardsMigrationManager
    from piccolo.apps.migrations.tables import Migration

    await ensure_database(settings.url)
    engine.configure(settings)
    lock = await asyncpg.connect(settings.url)
    try:
        await lock.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
        manager = ForwardsMigrationManager(app_name="fraudsvc", migration_id="all", fake=False)
        result = await manager.run()
        if not result.success:
            raise RuntimeError(f"migrations failed: {result.message}")
        applied = await Migration.select(Migration.name).where(Migration.app_name == "fraudsvc")
    finally:
        await lock.close()
    return sorted(str(row["name"]) for row in applied)
