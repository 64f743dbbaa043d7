"""Named lists in the database: definitions, entries, and the rows the in-memory lists load.

Values are stored in their canonical form (`fraudsvc.rules.values.normalise`), so the database
and the in-memory lookup agree. Every change writes its audit row in the same transaction, and a
statement trigger notifies `fraudsvc_rules`, so every web process reloads its lists within a
second (`fraudsvc.rules.live`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from fraudsvc.db import audit
from fraudsvc.db.engine import pool
from fraudsvc.db.queries import fetch_many, outage_guard
from fraudsvc.rules.lists import ListEntry
from fraudsvc.rules.schema import ListKind
from fraudsvc.rules.values import normalise


@dataclass(frozen=True)
class ListInfo:
    name: str
    kind: ListKind
    description: str
    created_at: datetime
    created_by: str
    updated_at: datetime
    entries: int


@dataclass(frozen=True)
class NewEntry:
    value: str
    reason: str = ""
    expires_at: datetime | None = None


@dataclass(frozen=True)
class StoredEntry:
    value: str
    reason: str
    source: str
    added_by: str
    added_at: datetime
    expires_at: datetime | None


async def define(name: str, kind: ListKind, description: str, actor: str) -> str:
    """Create a list, or update its description; 'created', 'updated' or 'unchanged'. The kind
    of an existing list cannot change (its entries and the rules that use it rely on it)."""
    async with outage_guard(), pool().acquire() as connection, connection.transaction():
        row = await connection.fetchrow(
            "SELECT kind, description FROM lists WHERE name = $1 FOR UPDATE", name
        )
        if row is not None and row["kind"] != kind:
            raise ValueError(
                f"list @{name} holds {row['kind']} values; a list's kind cannot change "
                "(create another list)"
            )
        if row is not None and row["description"] == description:
            return "unchanged"
        await connection.execute(
            "INSERT INTO lists (name, kind, description, created_by) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (name) DO UPDATE SET description = EXCLUDED.description, "
            "updated_at = now()",
            name,
            kind,
            description,
            actor,
        )
        outcome = "created" if row is None else "updated"
        await audit.record(
            connection,
            actor,
            f"list.{outcome}",
            f"list:{name}",
            {"kind": kind, "description": description},
        )
        return outcome


async def info(name: str) -> ListInfo | None:
    rows = await fetch_many(
        "SELECT l.name, l.kind, l.description, l.created_at, l.created_by, l.updated_at, "
        "(SELECT count(*) FROM list_entries AS e WHERE e.list_name = l.name) AS entries "
        "FROM lists AS l WHERE l.name = $1",
        name,
    )
    return None if not rows else ListInfo(**dict(rows[0]))


async def all_lists() -> list[ListInfo]:
    rows = await fetch_many(
        "SELECT l.name, l.kind, l.description, l.created_at, l.created_by, l.updated_at, "
        "(SELECT count(*) FROM list_entries AS e WHERE e.list_name = l.name) AS entries "
        "FROM lists AS l ORDER BY l.name"
    )
    return [ListInfo(**dict(r)) for r in rows]


async def entries_of(name: str, limit: int = 1000, after: str = "") -> list[StoredEntry]:
    rows = await fetch_many(
        "SELECT value, reason, source, added_by, added_at, expires_at FROM list_entries "
        "WHERE list_name = $1 AND value > $2 ORDER BY value LIMIT $3",
        name,
        after,
        limit,
    )
    return [StoredEntry(**dict(r)) for r in rows]


async def add(name: str, entries: Sequence[NewEntry], source: str, actor: str) -> tuple[int, int]:
    """Add or replace entries (values normalised for the list's kind; ValueError names a bad
    one); returns (added, changed)."""
    async with outage_guard(), pool().acquire() as connection, connection.transaction():
        return await add_on(connection, name, entries, source, actor)


async def add_on(
    connection: asyncpg.Connection,
    name: str,
    entries: Sequence[NewEntry],
    source: str,
    actor: str,
) -> tuple[int, int]:
    """`add` inside the caller's transaction (an analyst's verdict adds with its label)."""
    kind = await connection.fetchval("SELECT kind FROM lists WHERE name = $1", name)
    if kind is None:
        raise LookupError(f"no list @{name}: create it first (PUT /v1/lists/{name})")
    # one row per canonical value (the last one given wins): "10.0.0.1" and "10.0.0.1/32",
    # or a value sent twice, are one entry
    latest = {normalise(kind, e.value): e for e in entries}
    rows = [(name, value, e.reason, source, actor, e.expires_at) for value, e in latest.items()]
    result = await connection.fetch(
        "INSERT INTO list_entries AS le (list_name, value, reason, source, added_by, "
        "expires_at) SELECT * FROM unnest($1::varchar[], $2::varchar[], $3::text[], "
        "$4::varchar[], $5::varchar[], $6::timestamptz[]) "
        "ON CONFLICT (list_name, value) DO UPDATE SET reason = EXCLUDED.reason, "
        "source = EXCLUDED.source, added_by = EXCLUDED.added_by, added_at = now(), "
        "expires_at = EXCLUDED.expires_at "
        "WHERE (le.reason, le.source, le.expires_at) IS DISTINCT FROM "
        "(EXCLUDED.reason, EXCLUDED.source, EXCLUDED.expires_at) "
        "RETURNING (xmax = 0) AS inserted, value",
        *[list(column) for column in zip(*rows, strict=True)] if rows else [[]] * 6,
    )
    added = sum(1 for r in result if r["inserted"])
    changed = len(result) - added
    if result:
        await connection.execute("UPDATE lists SET updated_at = now() WHERE name = $1", name)
        await audit.record(
            connection,
            actor,
            "list.entries_added",
            f"list:{name}",
            [{"value": r["value"], "new": r["inserted"]} for r in result],
        )
    return added, changed


@dataclass(frozen=True)
class Diff:
    """What an import would do to a list: the file is the list's whole new content."""

    added: list[NewEntry]
    changed: list[NewEntry]
    removed: list[str]


async def import_diff(name: str, wanted: Sequence[NewEntry]) -> Diff:
    """Compare a list with the entries of a file (values normalised; ValueError names a bad
    one, or a value given twice)."""
    kind = await _kind(name)
    desired: dict[str, NewEntry] = {}
    for entry in wanted:
        value = normalise(kind, entry.value)
        if value in desired:
            raise ValueError(f"{entry.value!r} is in the file twice")
        desired[value] = NewEntry(value, entry.reason, entry.expires_at)
    current = {
        r["value"]: (r["reason"], r["expires_at"])
        for r in await fetch_many(
            "SELECT value, reason, expires_at FROM list_entries WHERE list_name = $1", name
        )
    }
    return Diff(
        added=[e for v, e in desired.items() if v not in current],
        changed=[
            e for v, e in desired.items() if v in current and current[v] != (e.reason, e.expires_at)
        ],
        removed=sorted(v for v in current if v not in desired),
    )


async def apply_import(name: str, diff: Diff, source: str, actor: str) -> None:
    """Apply an import's diff in one transaction, with one audit row."""
    async with outage_guard(), pool().acquire() as connection, connection.transaction():
        upserts = [*diff.added, *diff.changed]
        if upserts:
            await connection.execute(
                "INSERT INTO list_entries AS le (list_name, value, reason, source, added_by, "
                "expires_at) SELECT $1, * FROM unnest($2::varchar[], $3::text[], "
                "$4::varchar[], $5::varchar[], $6::timestamptz[]) "
                "ON CONFLICT (list_name, value) DO UPDATE SET reason = EXCLUDED.reason, "
                "source = EXCLUDED.source, added_by = EXCLUDED.added_by, added_at = now(), "
                "expires_at = EXCLUDED.expires_at",
                name,
                [e.value for e in upserts],
                [e.reason for e in upserts],
                [source] * len(upserts),
                [actor] * len(upserts),
                [e.expires_at for e in upserts],
            )
        if diff.removed:
            await connection.execute(
                "DELETE FROM list_entries WHERE list_name = $1 AND value = ANY($2::varchar[])",
                name,
                diff.removed,
            )
        await connection.execute("UPDATE lists SET updated_at = now() WHERE name = $1", name)
        await audit.record(
            connection,
            actor,
            "list.imported",
            f"list:{name}",
            {"added": len(diff.added), "changed": len(diff.changed), "removed": diff.removed},
        )


async def _kind(name: str) -> ListKind:
    rows = await fetch_many("SELECT kind FROM lists WHERE name = $1", name)
    if not rows:
        raise LookupError(f"no list @{name}: create it first")
    kind: ListKind = rows[0]["kind"]
    return kind


async def remove(name: str, value: str, actor: str) -> bool:
    async with outage_guard(), pool().acquire() as connection, connection.transaction():
        kind = await connection.fetchval("SELECT kind FROM lists WHERE name = $1", name)
        if kind is None:
            raise LookupError(f"no list @{name}")
        canonical = normalise(kind, value)
        status = await connection.execute(
            "DELETE FROM list_entries WHERE list_name = $1 AND value = $2", name, canonical
        )
        removed = bool(status == "DELETE 1")
        if removed:
            await connection.execute("UPDATE lists SET updated_at = now() WHERE name = $1", name)
            await audit.record(
                connection, actor, "list.entry_removed", f"list:{name}", {"value": canonical}
            )
        return removed


SNAPSHOT_CHUNK = 10_000
"""Entries decoded per round trip when every list is read: the event loop serves requests
between chunks (300,000 entries in one fetch held it for a good fraction of a second)."""


async def snapshot_rows(
    entries: bool = True,
) -> tuple[dict[str, ListKind], list[tuple[str, ListEntry]]]:
    """Every list's kind and (unless `entries` is false) every entry: what the in-memory lists
    are built from. One snapshot (a read-only transaction), read in chunks."""
    async with (
        outage_guard(),
        pool().acquire() as connection,
        connection.transaction(readonly=True, isolation="repeatable_read"),
    ):
        kinds = {
            r["name"]: r["kind"] for r in await connection.fetch("SELECT name, kind FROM lists")
        }
        out: list[tuple[str, ListEntry]] = []
        if not entries:
            return kinds, out
        cursor = await connection.cursor(
            "SELECT list_name, value, reason, source, added_by, expires_at FROM list_entries"
        )
        while rows := await cursor.fetch(SNAPSHOT_CHUNK):
            out += [(r[0], ListEntry(r[1], r[2], r[3], r[4], r[5])) for r in rows]
            await asyncio.sleep(0)  # let requests in between chunks
    return kinds, out


GENERATION_SQL = "SELECT value FROM rules_generation"


async def generation() -> int:
    """A number that moves whenever a list, an entry or the live ruleset changes."""
    rows = await fetch_many(GENERATION_SQL)
    return int(rows[0][0])
