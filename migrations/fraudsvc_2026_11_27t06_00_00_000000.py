"""History partitioned by month, so that retention drops whole partitions.

- transactions and predictions become RANGE-partitioned on the transaction's timestamp (`ts`;
  predictions gain the column, copied from their transaction), one partition per month
  (`<table>_pYYYYMM`) plus a DEFAULT partition each (see fraudsvc.db.partitions for why). An
  existing database is converted in place, in this migration's transaction: new partitioned
  tables are created with a partition for every month that holds rows (and this month and the
  next one), the rows are copied, the old tables dropped and the new ones renamed; their
  check constraints, indexes (whatever `fraudsvc migrate` had added for the declared entities
  too, less the two that duplicated the covering (customer_id, ts) and (terminal_id, ts) ones)
  and triggers (immutability, feature buckets) are recreated from the old tables' own
  definitions. `fraudsvc migrate` then creates the months ahead as the worker does daily.
- transaction_ids (transaction_id primary key, ts): a partitioned table's unique keys must hold
  the partition key, so transactions' primary key becomes (transaction_id, ts) and no longer
  makes an id unique on its own. This small unpartitioned table does: the scoring write inserts
  the id there first (ON CONFLICT DO NOTHING) and the transaction only if that inserted a row,
  in the same statement, so a repeated id is still a 200 (same body) or a 409 (another body)
  whatever month either copy is dated in. Retention keeps these rows (see
  fraudsvc.db.retention): a pruned id is refused with a 409, never scored a second time.
- Foreign keys: predictions (transaction_id, ts) -> transactions (transaction_id, ts) survives
  (PostgreSQL allows a foreign key to a partitioned table on its whole primary key). Three
  could not: labels -> transactions, explanations -> predictions and review_cases ->
  predictions referenced the transaction id alone, which is no longer a unique key of a
  partitioned table. They now reference transaction_ids (ON DELETE CASCADE, as before): a label,
  explanation or case still cannot exist for an unknown id; that an explanation or a case
  belongs to a scored transaction (not an imported one) is now kept by their only writers (the
  scoring write, and the explanation request, which checks for the prediction).
"""

from datetime import UTC, date, datetime

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-27T06:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "transactions and predictions partitioned by month; transaction_ids keeps ids unique"

AHEAD = 1
"""Months after the current one given a partition now (the worker keeps this many ahead)."""


class _Raw(Table):
    """Only a handle for raw SQL inside the migration's transaction."""


def _next(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def _bounds(month: date) -> str:
    return f"FROM ('{month.isoformat()} 00:00:00+00') TO ('{_next(month).isoformat()} 00:00:00+00')"


async def _months() -> list[date]:
    """Every month that holds a transaction (up to AHEAD months ahead), and the months ahead."""
    now = datetime.now(UTC).date()
    month = date(now.year, now.month, 1)
    wanted = {month}
    for _ in range(AHEAD):
        month = _next(month)
        wanted.add(month)
    rows = await _Raw.raw(
        "SELECT DISTINCT date_trunc('month', ts AT TIME ZONE 'UTC')::date AS month "
        "FROM transactions"
    )
    wanted |= {r["month"] for r in rows if r["month"] <= month}  # beyond: DEFAULT
    return sorted(wanted)


async def _definitions(table: str) -> tuple[list[str], list[str]]:
    """The old table's secondary indexes and its own triggers, as CREATE statements."""
    indexes = await _Raw.raw(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() "
        f"AND tablename = '{table}' AND indexname <> '{table}_pkey' ORDER BY indexname"
    )
    triggers = await _Raw.raw(
        "SELECT pg_get_triggerdef(oid) AS def FROM pg_trigger "
        f"WHERE tgrelid = '{table}'::regclass AND NOT tgisinternal ORDER BY tgname"
    )
    return _without_duplicates([r["indexdef"] for r in indexes]), [r["def"] for r in triggers]


def _key_columns(definition: str) -> str:
    return definition.split(" USING ", 1)[1].split(")", 1)[0]


def _without_duplicates(definitions: list[str]) -> list[str]:
    """Leave out an index whose key columns another index has too, with more (INCLUDE): the
    feature buckets' sync added (customer_id, ts) and (terminal_id, ts) beside the covering
    ones. On a partitioned table each index costs a lock per partition on every statement that
    plans over them (PostgreSQL's 16 fast-path locks run out), and an entry per written row."""
    kept = []
    for d in definitions:
        same = [o for o in definitions if o != d and _key_columns(o) == _key_columns(d)]
        if any(len(o) > len(d) or (len(o) == len(d) and o < d) for o in same):
            continue
        kept.append(d)
    return kept


async def _partition() -> None:
    months = await _months()
    tx_indexes, tx_triggers = await _definitions("transactions")
    p_indexes, p_triggers = await _definitions("predictions")
    statements = [
        """CREATE TABLE transaction_ids (
               transaction_id varchar(64) PRIMARY KEY,
               ts timestamptz NOT NULL
           )""",
        """INSERT INTO transaction_ids (transaction_id, ts)
           SELECT transaction_id, ts FROM transactions""",
        """CREATE TABLE transactions_partitioned
               (LIKE transactions INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
               PARTITION BY RANGE (ts)""",
        """CREATE TABLE predictions_partitioned
               (LIKE predictions INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
                ts timestamptz NOT NULL)
               PARTITION BY RANGE (ts)""",
    ]
    for table in ("transactions", "predictions"):
        for month in months:
            name = f"{table}_p{month.year:04d}{month.month:02d}"
            statements.append(
                f"CREATE TABLE {name} PARTITION OF {table}_partitioned FOR VALUES {_bounds(month)}"
            )
        statements.append(f"CREATE TABLE {table}_default PARTITION OF {table}_partitioned DEFAULT")
    statements += [
        "INSERT INTO transactions_partitioned SELECT * FROM transactions",
        """INSERT INTO predictions_partitioned
           SELECT p.*, t.ts FROM predictions AS p JOIN transactions AS t USING (transaction_id)""",
        # CASCADE: the foreign keys of labels, explanations and review_cases go with them
        "DROP TABLE predictions CASCADE",
        "DROP TABLE transactions CASCADE",
        "ALTER TABLE transactions_partitioned RENAME TO transactions",
        "ALTER TABLE predictions_partitioned RENAME TO predictions",
        """ALTER TABLE transactions ADD CONSTRAINT transactions_pkey
           PRIMARY KEY (transaction_id, ts)""",
        """ALTER TABLE predictions ADD CONSTRAINT predictions_pkey
           PRIMARY KEY (transaction_id, ts)""",
        *tx_indexes,
        *p_indexes,
        """ALTER TABLE predictions ADD CONSTRAINT predictions_transaction_fk
           FOREIGN KEY (transaction_id, ts) REFERENCES transactions (transaction_id, ts)""",
        """ALTER TABLE labels ADD CONSTRAINT labels_transaction_fk FOREIGN KEY (transaction_id)
           REFERENCES transaction_ids (transaction_id) ON DELETE CASCADE""",
        """ALTER TABLE explanations ADD CONSTRAINT explanations_transaction_fk
           FOREIGN KEY (transaction_id)
           REFERENCES transaction_ids (transaction_id) ON DELETE CASCADE""",
        """ALTER TABLE review_cases ADD CONSTRAINT review_cases_transaction_fk
           FOREIGN KEY (transaction_id)
           REFERENCES transaction_ids (transaction_id) ON DELETE CASCADE""",
        *tx_triggers,
        *p_triggers,
        "ANALYZE transaction_ids, transactions, predictions",
    ]
    for statement in statements:
        await _Raw.raw(statement)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="fraudsvc", description=DESCRIPTION)
    manager.add_raw(_partition)
    return manager
