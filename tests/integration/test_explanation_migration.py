"""The migrations that add LIME's target, options and stability to explanations, applied to a
database that already holds explanations (built by the real migrations up to the one before)."""

from __future__ import annotations

import contextlib
import io
import os
import secrets
from collections.abc import AsyncIterator

import asyncpg
import pytest
from piccolo.apps.migrations.commands.forwards import ForwardsMigrationManager

from fraudsvc.db import engine
from fraudsvc.db.admin import drop_database, ensure_database, migrate
from fraudsvc.settings import Settings

BEFORE = "2026-11-25T00:31:32:075116"
"""The last migration before explanations recorded their target."""


@pytest.fixture
async def old_database() -> AsyncIterator[str]:
    base = os.environ["FRAUDSVC_TEST_DATABASE_URL"].rstrip("/")
    url = f"{base}/fraudsvc_test_migration_{os.getpid()}_{secrets.token_hex(3)}"
    await ensure_database(url)
    engine.configure(Settings.from_env({"DATABASE_URL": url}).database)
    with contextlib.redirect_stdout(io.StringIO()):  # Piccolo's progress
        result = await ForwardsMigrationManager(app_name="fraudsvc", migration_id=BEFORE).run()
    assert result.success, result.message
    try:
        yield url
    finally:
        await drop_database(url)


async def _insert(connection: asyncpg.Connection, tid: str, status: str) -> None:
    await connection.execute(
        "INSERT INTO transactions (transaction_id, ts, customer_id, terminal_id, amount, "
        "received_at) VALUES ($1, now(), 'C1', 'T1', 10.0, now())",
        tid,
    )
    await connection.execute(
        "INSERT INTO predictions (transaction_id, score, decision, threshold_review, "
        "threshold_block, model_name, model_version, feature_hash, features, correlation_id, "
        "created_at) VALUES ($1, 0.25, 'review', 0.1, 0.5, 'm', '1', 'h', '{1.0}', 'c', now())",
        tid,
    )
    await connection.execute(
        "INSERT INTO explanations (transaction_id, status, reason, attempts, method, "
        "requested_at, score) VALUES ($1, $2, 'flagged', 1, 'lime', now(), $3)",
        tid,
        status,
        0.25 if status == "done" else None,
    )


async def test_earlier_explanations_say_they_ran_limes_old_defaults(old_database: str) -> None:
    connection = await asyncpg.connect(old_database)
    try:
        await _insert(connection, "done-before", "done")
        await _insert(connection, "pending-before", "pending")
        await migrate(Settings.from_env({"DATABASE_URL": old_database}).database)
        done = await connection.fetchrow(
            "SELECT * FROM explanations WHERE transaction_id = 'done-before'"
        )
        pending = await connection.fetchrow(
            "SELECT * FROM explanations WHERE transaction_id = 'pending-before'"
        )
        with pytest.raises(asyncpg.CheckViolationError):
            await connection.execute("UPDATE explanations SET target = 'logit'")
        with pytest.raises(asyncpg.CheckViolationError):
            await connection.execute("UPDATE explanations SET stability = 1.5")
    finally:
        await connection.close()
    assert done is not None
    assert pending is not None
    assert (done["target"], done["model_output"], done["discretizer"]) == (
        "probability",
        0.25,
        "quartile",
    )
    assert done["sample_around_instance"] is False
    assert done["kernel_width_factor"] == 0.75
    assert done["stability_seeds"] == 0
    assert done["stability"] is None  # never measured
    # a pending explanation will run with the new options and record them itself
    assert pending["target"] is None
    assert pending["discretizer"] is None
