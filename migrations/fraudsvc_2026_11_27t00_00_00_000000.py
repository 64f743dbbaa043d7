"""Time buckets and exact amounts.

- transactions.amount (float8) becomes amount_minor (bigint, minor units of the reporting
  currency): sums of integers are exact in any order, so bucketed sums equal raw sums bit for bit.
  Existing amounts convert exactly (float8 -> numeric keeps 15 significant digits, and an amount
  has at most 9).
- feature_buckets: per-entity partial aggregates by time bucket; feature_entities: which entities
  this database keeps buckets for, and for deferred ones (the terminal's) the horizon up to which
  the worker has folded rows in; an index on the timestamp for that fold. The triggers that maintain them, and the buckets of the stored
  rows, are installed by `fraudsvc migrate` right after this migration, from the feature
  declaration of the code that runs it (fraudsvc.db.buckets.sync), and it logs how long it took.
- feature_declarations: the declaration of every stored feature vector, by hash.
- transactions are immutable from now on (a bucket cannot forget a row's latest timestamp).
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-27T00:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "time buckets for the online features; amounts as integer minor units"


class _Raw(Table):
    """Only a handle for raw SQL inside the migration's transaction."""


STATEMENTS = [
    "ALTER TABLE transactions ADD COLUMN amount_minor bigint",
    "UPDATE transactions SET amount_minor = round(amount::numeric * 100)::bigint",
    "ALTER TABLE transactions ALTER COLUMN amount_minor SET NOT NULL",
    "ALTER TABLE transactions DROP CONSTRAINT transactions_amount_range",
    "DROP INDEX transactions_customer_ts",
    "DROP INDEX transactions_terminal_ts",
    "ALTER TABLE transactions DROP COLUMN amount",
    """ALTER TABLE transactions ADD CONSTRAINT transactions_amount_range
       CHECK (amount_minor >= 0 AND amount_minor <= 100000000)""",
    # the raw rows at a window's edges: (key, ts) ranges, read from the index alone
    """CREATE INDEX transactions_customer_ts ON transactions (customer_id, ts)
       INCLUDE (amount_minor)""",
    """CREATE INDEX transactions_terminal_ts ON transactions (terminal_id, ts)
       INCLUDE (transaction_id, amount_minor)""",
    # the worker's fold reads the rows of a time range (the terminal's buckets are deferred)
    "CREATE INDEX transactions_ts ON transactions (ts)",
    # byte order ("C") for the keys: the triggers sort bucket rows (one lock order for every
    # writer) and the primary key compares them on every read; linguistic order buys nothing
    """CREATE TABLE feature_buckets (
           entity text COLLATE "C" NOT NULL,
           key text COLLATE "C" NOT NULL,
           width integer NOT NULL,
           start timestamptz NOT NULL,
           n bigint NOT NULL,
           amount bigint NOT NULL,
           frauds bigint NOT NULL,
           latest timestamptz NOT NULL,
           PRIMARY KEY (entity, key, width, start),
           -- no check on frauds: a label's trigger proposes a row holding only the change
           -- (+1 or -1), and PostgreSQL checks a proposed row before it finds the conflict
           CHECK (n >= 0 AND amount >= 0)
       )""",
    """CREATE TABLE feature_entities (
           name text PRIMARY KEY,
           fields text[] NOT NULL,
           levels integer[] NOT NULL,
           horizon timestamptz,
           built_at timestamptz NOT NULL,
           rows bigint NOT NULL,
           seconds double precision NOT NULL
       )""",
    # what a stored feature vector means: the declaration it was computed with, by hash
    """CREATE TABLE feature_declarations (
           hash varchar(64) PRIMARY KEY,
           declaration jsonb NOT NULL,
           names text[] NOT NULL,
           first_used_at timestamptz NOT NULL
       )""",
    """CREATE FUNCTION fraudsvc_transactions_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
           RAISE EXCEPTION 'transactions are immutable (% refused): the feature buckets summarise '
               'them; old history is removed by whole partitions', TG_OP
               USING ERRCODE = 'restrict_violation';
       END $$""",
    """CREATE TRIGGER transactions_immutable BEFORE UPDATE OR DELETE ON transactions
       FOR EACH STATEMENT EXECUTE FUNCTION fraudsvc_transactions_immutable()""",
]


async def _buckets() -> None:
    for statement in STATEMENTS:
        await _Raw.raw(statement)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="fraudsvc", description=DESCRIPTION)
    manager.add_raw(_buckets)
    return manager
