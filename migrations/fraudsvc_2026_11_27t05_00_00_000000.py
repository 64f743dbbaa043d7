"""Analysts, their sessions and the sign-in throttle, for the review pages.

- analysts: accounts made with `fraudsvc analysts add` (argon2id hash, never the password);
  disabling one keeps its name in the audit trail and labels, and ends its sessions.
- analyst_sessions: a session is a random token in a cookie; only its SHA-256 is stored, so a
  copy of the table opens nothing. Each carries its CSRF token and a fixed expiry.
- signin_failures: failed sign-ins counted per account name and per client address in a fixed
  window, so guessing is throttled (429) across web processes.
- the queue reads open cases with their predictions; a partial index on claims finds an
  analyst's claimed cases.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-27T05:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "analysts, sessions and the sign-in throttle"


class _Raw(Table):
    """Only a handle for raw SQL inside the migration's transaction."""


STATEMENTS = [
    """CREATE TABLE analysts (
           name varchar(64) PRIMARY KEY,
           password_hash text NOT NULL,
           disabled boolean NOT NULL DEFAULT false,
           created_at timestamptz NOT NULL DEFAULT now()
       )""",
    """CREATE TABLE analyst_sessions (
           token_hash char(64) PRIMARY KEY,
           analyst varchar(64) NOT NULL REFERENCES analysts (name) ON DELETE CASCADE,
           created_at timestamptz NOT NULL DEFAULT now(),
           expires_at timestamptz NOT NULL,
           csrf_token varchar(64) NOT NULL
       )""",
    "CREATE INDEX analyst_sessions_expiry ON analyst_sessions (expires_at)",
    "CREATE INDEX analyst_sessions_analyst ON analyst_sessions (analyst)",
    """CREATE TABLE signin_failures (
           scope varchar(8) NOT NULL CHECK (scope IN ('name', 'address')),
           key varchar(128) NOT NULL,
           window_start timestamptz NOT NULL DEFAULT now(),
           failures integer NOT NULL DEFAULT 0,
           PRIMARY KEY (scope, key)
       )""",
    """CREATE INDEX review_cases_claimed ON review_cases (claimed_by, claimed_until)
       WHERE status = 'open'""",
]


async def _analysts() -> None:
    for statement in STATEMENTS:
        await _Raw.raw(statement)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="fraudsvc", description=DESCRIPTION)
    manager.add_raw(_analysts)
    return manager
