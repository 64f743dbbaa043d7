"""Rulesets in the database: numbered immutable versions, the live pointer, and the stored
history a backtest reads.

A version is written once (`create`) and never changed; publishing (or rolling back) moves the
single `ruleset_live` row, which notifies every web process (`fraudsvc_rules`). Each change
writes its audit row in the same transaction.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import msgspec

from fraudsvc.db import audit
from fraudsvc.db.engine import pool
from fraudsvc.db.queries import fetch_many, outage_guard, transaction_from
from fraudsvc.rules.ruleset import RuleSpec
from fraudsvc.transaction import Transaction


@dataclass(frozen=True)
class StoredRuleset:
    version: int
    description: str
    rules: list[RuleSpec]
    created_at: datetime
    created_by: str
    live: bool
    published_at: datetime | None
    published_by: str | None


RULESET_SQL = """
SELECT r.version, r.description, r.rules, r.created_at, r.created_by,
       l.version IS NOT NULL AS live, l.published_at, l.published_by
FROM rulesets AS r LEFT JOIN ruleset_live AS l ON l.version = r.version
"""


def _stored(row: asyncpg.Record) -> StoredRuleset:
    return StoredRuleset(
        version=row["version"],
        description=row["description"],
        rules=msgspec.json.decode(row["rules"], type=list[RuleSpec]),
        created_at=row["created_at"],
        created_by=row["created_by"],
        live=row["live"],
        published_at=row["published_at"],
        published_by=row["published_by"],
    )


async def create(specs: Sequence[RuleSpec], description: str, actor: str) -> StoredRuleset:
    """Store a new version (a draft until published)."""
    rules = msgspec.json.encode(list(specs)).decode()
    async with outage_guard(), pool().acquire() as connection, connection.transaction():
        version = await connection.fetchval(
            "INSERT INTO rulesets (description, rules, created_by) VALUES ($1, $2::jsonb, $3) "
            "RETURNING version",
            description,
            rules,
            actor,
        )
        await audit.record(
            connection,
            actor,
            "ruleset.created",
            f"ruleset:{version}",
            {"rules": [s.id for s in specs], "description": description},
        )
        row = await connection.fetchrow(RULESET_SQL + " WHERE r.version = $1", version)
    return _stored(row)


async def get(version: int) -> StoredRuleset | None:
    rows = await fetch_many(RULESET_SQL + " WHERE r.version = $1", version)
    return _stored(rows[0]) if rows else None


async def live() -> StoredRuleset | None:
    rows = await fetch_many(RULESET_SQL + " WHERE l.version IS NOT NULL")
    return _stored(rows[0]) if rows else None


async def versions(limit: int = 100) -> list[StoredRuleset]:
    rows = await fetch_many(RULESET_SQL + " ORDER BY r.version DESC LIMIT $1", limit)
    return [_stored(r) for r in rows]


async def publish(version: int, actor: str) -> StoredRuleset:
    """Make a version live (a rollback is publishing an older one); LookupError if unknown."""
    async with outage_guard(), pool().acquire() as connection, connection.transaction():
        exists = await connection.fetchval(
            "SELECT version FROM rulesets WHERE version = $1", version
        )
        if exists is None:
            raise LookupError(f"no ruleset version {version}")
        before = await connection.fetchval("SELECT version FROM ruleset_live FOR UPDATE")
        await connection.execute(
            "INSERT INTO ruleset_live (singleton, version, published_at, published_by) "
            "VALUES (true, $1, now(), $2) ON CONFLICT (singleton) DO UPDATE SET "
            "version = EXCLUDED.version, published_at = now(), "
            "published_by = EXCLUDED.published_by",
            version,
            actor,
        )
        await audit.record(
            connection, actor, "ruleset.published", f"ruleset:{version}", {"previous": before}
        )
        row = await connection.fetchrow(RULESET_SQL + " WHERE r.version = $1", version)
    return _stored(row)


# --------------------------------------------------------------------------- backtest rows


@dataclass(frozen=True)
class Scored:
    """A stored scored transaction as a backtest replays it."""

    transaction: Transaction
    names: list[str] | None
    """The feature names of `features` (None: a vector of an unknown declaration)."""
    features: list[float]
    score: float
    model_decision: str
    decision: str
    """The final decision made live."""
    is_fraud: bool


HISTORY_SQL = """
SELECT t.transaction_id, t.ts, t.customer_id, t.terminal_id, t.amount_minor, t.currency,
       t.merchant_category, t.merchant_country, t.card_country, t.channel, t.device_id, t.ip,
       t.attributes, p.score, p.model_decision, p.decision, p.decided_by, p.features,
       d.names, coalesce(l.is_fraud, false) AS is_fraud
FROM transactions AS t
JOIN predictions AS p ON p.transaction_id = t.transaction_id AND p.ts = t.ts
LEFT JOIN feature_declarations AS d ON d.hash = p.feature_hash
LEFT JOIN labels AS l ON l.transaction_id = t.transaction_id
WHERE t.ts >= $1 AND t.ts < $2
ORDER BY t.ts, t.transaction_id
"""
BATCH = 5_000


async def history(start: datetime, end: datetime) -> AsyncIterator[list[Scored]]:
    """The scored transactions of [start, end) with their features, score and label, in batches
    (one snapshot: a read-only transaction with a cursor)."""
    async with (
        outage_guard(),
        pool().acquire() as connection,
        connection.transaction(readonly=True),
    ):
        cursor = await connection.cursor(HISTORY_SQL, start, end)
        while rows := await cursor.fetch(BATCH):
            yield [
                Scored(
                    transaction=transaction_from(r),
                    names=None if r["names"] is None else list(r["names"]),
                    features=list(r["features"]),
                    score=r["score"],
                    model_decision=r["model_decision"],
                    decision=r["decision"],
                    is_fraud=r["is_fraud"],
                )
                for r in rows
            ]
