"""A database of the test run's server migrated only up to an earlier version, for upgrade tests."""

from __future__ import annotations

import contextlib
import io
import os
import secrets
from collections.abc import AsyncIterator

from piccolo.apps.migrations.commands.forwards import ForwardsMigrationManager

from fraudsvc.db import engine
from fraudsvc.db.admin import drop_database, ensure_database
from fraudsvc.settings import Settings


@contextlib.asynccontextmanager
async def database_at(migration_id: str, purpose: str) -> AsyncIterator[str]:
    """A new database with the migrations up to `migration_id` applied (Piccolo's engine
    configured for it); dropped on the way out."""
    base = os.environ["FRAUDSVC_TEST_DATABASE_URL"].rstrip("/")
    url = f"{base}/fraudsvc_test_{purpose}_{os.getpid()}_{secrets.token_hex(3)}"
    await ensure_database(url)
    engine.configure(Settings.from_env({"DATABASE_URL": url}).database)
    with contextlib.redirect_stdout(io.StringIO()):  # Piccolo's progress
        result = await ForwardsMigrationManager(
            app_name="fraudsvc", migration_id=migration_id
        ).run()
    assert result.success, result.message
    try:
        yield url
    finally:
        await drop_database(url)
