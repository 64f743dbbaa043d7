"""A generation number for rules and lists, so a web process polls cheaply.

The statement triggers on lists, list_entries and ruleset_live that NOTIFY the web processes
also add one to `rules_generation.value`, in the changing transaction: a process that polls (in
case a notification was lost with its connection) reads it, and reloads the rules and lists
(every entry) only when it moved, instead of re-reading every list every poll. It is a row,
not a sequence, because a sequence moves before the change commits: a poll could read the new
number, then the old lists, and never look again.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-27T04:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "a generation number of rules and lists"


class _Raw(Table):
    """Only a handle for raw SQL inside the migration's transaction."""


STATEMENTS = [
    """CREATE TABLE rules_generation (
           singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
           value bigint NOT NULL
       )""",
    "INSERT INTO rules_generation (value) VALUES (0)",
    """CREATE OR REPLACE FUNCTION fraudsvc_notify_rules() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
           UPDATE rules_generation SET value = value + 1;
           PERFORM pg_notify('fraudsvc_rules', TG_TABLE_NAME);
           RETURN NULL;
       END $$""",
]


async def _generation() -> None:
    for statement in STATEMENTS:
        await _Raw.raw(statement)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="fraudsvc", description=DESCRIPTION)
    manager.add_raw(_generation)
    return manager
