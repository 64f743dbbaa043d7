"""Database administration: create the database if missing, apply the Piccolo migrations."""

from __future__ import annotations

import contextlib
import io
from urllib.parse import urlparse, urlunparse

import asyncpg
from loguru import logger

from fraudsvc.db import buckets, engine, partitions
from fraudsvc.features import DECLARATION, Declaration
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


async def migrate(
    settings: DatabaseSettings,
    declaration: Declaration = DECLARATION,
    ahead: int = partitions.DEFAULT_AHEAD,
) -> list[str]:
    """Create the database if needed, apply every pending migration, then make the feature
    buckets follow the declaration (triggers, and the buckets of new entities built from the
    stored rows) and create the monthly partitions of this month, the `ahead` next ones and any
    month whose rows wait in the DEFAULT partition; returns every migration applied.

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
        exists = await Migration.table_exists()
        before = await Migration.get_migrations_which_ran("fraudsvc") if exists else []
        manager = ForwardsMigrationManager(app_name="fraudsvc", migration_id="all", fake=False)
        # Piccolo prints its progress, and counts every migration as "already complete" before
        # running the pending ones; one accurate log line replaces it
        with contextlib.redirect_stdout(io.StringIO()) as printed:
            result = await manager.run()
        if not result.success:
            raise RuntimeError(f"migrations failed: {result.message}\n{printed.getvalue()}")
        applied = sorted(await Migration.get_migrations_which_ran("fraudsvc"))
        report = await buckets.sync(lock, declaration)
        created = await partitions.ensure(lock, ahead)
    finally:
        await lock.close()
    new = [name for name in applied if name not in before]
    logger.info(
        "migrations: {} applied now{}, {} in all",
        len(new),
        f" ({', '.join(new)})" if new else "",
        len(applied),
    )
    for built in report.built:
        logger.info(
            "feature buckets of {}: built {:,} buckets from the stored transactions in {:.1f} s",
            built.entity,
            built.rows,
            built.seconds,
        )
    for name in report.dropped:
        logger.info("feature buckets of {}: dropped (no longer declared)", name)
    for made in created:
        logger.info(
            "partitions of {:%Y-%m}: created ({:,} transactions moved out of DEFAULT)",
            made.month,
            made.moved,
        )
    if report.functions_installed:
        logger.info("feature buckets: triggers follow the declaration ({:.1f} s)", report.seconds)
    return applied
