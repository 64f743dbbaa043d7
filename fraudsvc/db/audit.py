"""The audit trail: every change to rules and lists, and every analyst action, in one table.

`record` runs on the connection of the change it describes, inside its transaction, so a change
and its audit row commit together or not at all. Actors are named, never by secret: an admin
key by its name (`key:<first 8 hex of its digest>`), an analyst by account name.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from fraudsvc.db.queries import fetch_many


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    subject: str
    details: Any


async def record(
    connection: asyncpg.Connection, actor: str, action: str, subject: str, details: Any = None
) -> None:
    await connection.execute(
        "INSERT INTO audit_log (actor, action, subject, details) VALUES ($1, $2, $3, $4::jsonb)",
        actor,
        action,
        subject,
        msgspec.json.encode(details if details is not None else []).decode(),
    )


async def entries(subject_prefix: str = "", limit: int = 100) -> list[AuditEntry]:
    """The newest entries whose subject starts with `subject_prefix` (all when empty)."""
    rows = await fetch_many(
        "SELECT id, at, actor, action, subject, details FROM audit_log "
        "WHERE subject LIKE $1 || '%' ORDER BY id DESC LIMIT $2",
        subject_prefix,
        limit,
    )
    return [
        AuditEntry(
            r["id"],
            r["at"],
            r["actor"],
            r["action"],
            r["subject"],
            msgspec.json.decode(r["details"]),
        )
        for r in rows
    ]
