"""Analyst accounts, their sessions and the sign-in throttle (tables of the 05:00 migration).

Only hashes are stored: the password's argon2id hash (made by `fraudsvc.review.auth`, never
here) and the SHA-256 of a session token, so a copy of these tables signs nobody in. A session
is valid while its account is enabled and before its fixed expiry; disabling an account ends its
sessions at once. Failed sign-ins are counted in the database, so the throttle holds across web
processes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from fraudsvc.db import audit
from fraudsvc.db.engine import pool
from fraudsvc.db.queries import fetch_many, outage_guard

ThrottleScope = Literal["name", "address"]


@dataclass(frozen=True)
class Analyst:
    name: str
    disabled: bool
    created_at: datetime


@dataclass(frozen=True)
class Credentials:
    name: str
    password_hash: str
    disabled: bool


@dataclass(frozen=True)
class Session:
    analyst: str
    csrf_token: str
    expires_at: datetime


async def create(name: str, password_hash: str, actor: str) -> bool:
    """A new account; False when the name is taken (nothing changes)."""
    async with outage_guard(), pool().acquire() as connection, connection.transaction():
        created = await connection.fetchval(
            "INSERT INTO analysts (name, password_hash) VALUES ($1, $2) "
            "ON CONFLICT (name) DO NOTHING RETURNING true",
            name,
            password_hash,
        )
        if created:
            await audit.record(connection, actor, "analyst.created", f"analyst:{name}")
        return bool(created)


async def all_analysts() -> list[Analyst]:
    rows = await fetch_many("SELECT name, disabled, created_at FROM analysts ORDER BY name")
    return [Analyst(r["name"], r["disabled"], r["created_at"]) for r in rows]


async def disable(name: str, actor: str) -> bool:
    """Disable an account and end its sessions; False when there is no such account."""
    async with outage_guard(), pool().acquire() as connection, connection.transaction():
        found = await connection.fetchval(
            "UPDATE analysts SET disabled = true WHERE name = $1 RETURNING true", name
        )
        if not found:
            return False
        await connection.execute("DELETE FROM analyst_sessions WHERE analyst = $1", name)
        await audit.record(connection, actor, "analyst.disabled", f"analyst:{name}")
        return True


async def set_password(name: str, password_hash: str, actor: str) -> bool:
    """A new password (a forgotten one, a demo's); ends the account's sessions. False when there
    is no such account."""
    async with outage_guard(), pool().acquire() as connection, connection.transaction():
        found = await connection.fetchval(
            "UPDATE analysts SET password_hash = $2 WHERE name = $1 RETURNING true",
            name,
            password_hash,
        )
        if not found:
            return False
        await connection.execute("DELETE FROM analyst_sessions WHERE analyst = $1", name)
        await audit.record(connection, actor, "analyst.password_set", f"analyst:{name}")
        return True


async def credentials(name: str) -> Credentials | None:
    rows = await fetch_many(
        "SELECT name, password_hash, disabled FROM analysts WHERE name = $1", name
    )
    if not rows:
        return None
    r = rows[0]
    return Credentials(r["name"], r["password_hash"], r["disabled"])


async def replace_hash(name: str, password_hash: str) -> None:
    """argon2's parameters moved on since the hash was made: store the rehash."""
    await fetch_many("UPDATE analysts SET password_hash = $2 WHERE name = $1", name, password_hash)


async def open_session(
    token_hash: str, analyst: str, csrf_token: str, minutes: int, address: str
) -> None:
    """A new session (and the sign-in in the audit trail); expired sessions are swept here."""
    async with outage_guard(), pool().acquire() as connection, connection.transaction():
        await connection.execute("DELETE FROM analyst_sessions WHERE expires_at < now()")
        await connection.execute(
            "INSERT INTO analyst_sessions (token_hash, analyst, csrf_token, expires_at) "
            "VALUES ($1, $2, $3, now() + make_interval(mins => $4))",
            token_hash,
            analyst,
            csrf_token,
            minutes,
        )
        await audit.record(
            connection, analyst, "analyst.signed_in", f"analyst:{analyst}", {"address": address}
        )


async def session(token_hash: str) -> Session | None:
    """The live session of an enabled account, or None."""
    rows = await fetch_many(
        "SELECT s.analyst, s.csrf_token, s.expires_at FROM analyst_sessions AS s "
        "JOIN analysts AS a ON a.name = s.analyst "
        "WHERE s.token_hash = $1 AND s.expires_at > now() AND NOT a.disabled",
        token_hash,
    )
    if not rows:
        return None
    r = rows[0]
    return Session(r["analyst"], r["csrf_token"], r["expires_at"])


async def close_session(token_hash: str) -> None:
    await fetch_many("DELETE FROM analyst_sessions WHERE token_hash = $1", token_hash)


async def throttled(keys: dict[ThrottleScope, str], attempts: int, window_minutes: int) -> bool:
    """Whether any of the keys has reached `attempts` failures in the current window."""
    rows = await fetch_many(
        "SELECT 1 FROM signin_failures WHERE (scope, key) IN "
        "(SELECT * FROM unnest($1::varchar[], $2::varchar[])) "
        "AND failures >= $3 AND window_start > now() - make_interval(mins => $4)",
        list(keys),
        list(keys.values()),
        attempts,
        window_minutes,
    )
    return bool(rows)


async def record_failure(keys: dict[ThrottleScope, str], window_minutes: int) -> None:
    """Count a failed sign-in against each key; a key whose window has passed starts again.
    Counts of past windows are dropped here, so guessed names do not pile up."""
    await fetch_many(
        "DELETE FROM signin_failures WHERE window_start < now() - make_interval(mins => $1)",
        window_minutes,
    )
    await fetch_many(
        "INSERT INTO signin_failures AS f (scope, key, window_start, failures) "
        "SELECT scope, key, now(), 1 FROM unnest($1::varchar[], $2::varchar[]) AS u(scope, key) "
        "ON CONFLICT (scope, key) DO UPDATE SET "
        "failures = CASE WHEN f.window_start > now() - make_interval(mins => $3) "
        "THEN f.failures + 1 ELSE 1 END, "
        "window_start = CASE WHEN f.window_start > now() - make_interval(mins => $3) "
        "THEN f.window_start ELSE now() END",
        list(keys),
        list(keys.values()),
        window_minutes,
    )


async def clear_failures(name: str) -> None:
    """A successful sign-in clears its name's count (an address's count stays: it may be
    guessing other names)."""
    await fetch_many("DELETE FROM signin_failures WHERE scope = 'name' AND key = $1", name)
