"""The migrations that add LIME's target, options and stability to explanations, applied to a
database that already holds explanations (built by the real migrations up to the one before)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from fraudsvc.db.admin import migrate
from fraudsvc.settings import Settings
from tests.migrated import database_at

BEFORE = "2026-11-25T00:31:32:075116"
"""The last migration before explanations recorded their target."""


@pytest.fixture
async def old_database() -> AsyncIterator[str]:
    async with database_at(BEFORE, "migration") as url:
        yield url


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
