"""Time buckets: per-entity partial aggregates that make a window's cost independent of volume.

`feature_buckets` holds, per entity (a declared key such as the customer, or the customer and the
device), key value, bucket width (a day, an hour, a minute) and bucket start: the number of
transactions, their amount in minor units, how many are labelled fraud, and the latest timestamp.

Two ways to keep them, both exact, chosen per entity by the declaration:

- Synchronous (entities with a window ending at the transaction, such as the customer's):
  statement-level triggers on transactions and labels update the buckets in the same database
  transaction as the rows they summarise, for every writer: the scoring write, `fraudsvc
  backfill`, a label that arrives, is corrected or removed (the fraud count moves in every
  bucket of that transaction, once), and anything else. They read transition tables, so a bulk
  import aggregates per bucket before it writes, and every statement touches bucket rows in one
  global order (no deadlocks).
- Deferred (entities whose windows all end an hour or more back: the terminal's end a label delay
  back): the buckets hold the rows at or before the entity's horizon (`feature_entities.horizon`)
  and the worker folds newer rows in every few seconds (`fold`), moving the horizon to a minute
  ago. The triggers bucket only rows that arrive at or before the horizon (late rows: a backfill,
  a replay of old data), so a live transaction's write never touches these buckets and a hot
  merchant's payments do not queue on its bucket rows. A fold and a trigger that buckets late rows
  exclude each other with an advisory lock (the trigger's is shared, the fold's exclusive), so a
  row is bucketed exactly once whichever commits first. Reads add the raw rows above the horizon.

Transactions are immutable: updating their fields or deleting rows is refused, since a removed
row could not be taken out of `latest`; old history goes by whole partitions (retention).

`sync()` (run by `fraudsvc migrate`) makes the database follow a declaration: it installs the
trigger functions for the declared entities and builds the buckets of any entity that is new or
changed from the stored rows, under a lock that holds writers back meanwhile, so that the buckets
are exact from the first read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from fraudsvc.features.declaration import Declaration, Entity

KEY_SEPARATOR = "|"  # in no field's charset (ids, codes, canonical IPs)
SYNC_LOCK = 0x6672617564 + 1  # pg_advisory_xact_lock key: one sync at a time
FOLD_LOCK_CLASS = 0x66726175  # with hashtext(entity name): the fold's lock of one entity
FOLD_LAG = timedelta(seconds=60)
"""How far behind now a fold moves the horizon: live transactions stay above it."""
FOLD_CHUNK = timedelta(hours=6)
"""At most this much transaction time folded per database transaction (a first fold after a
long pause holds the lock in short steps)."""
INSERT_FUNCTION = "fraudsvc_buckets_on_insert"
LABEL_FUNCTIONS = {
    "INSERT": "fraudsvc_buckets_on_label_insert",
    "UPDATE": "fraudsvc_buckets_on_label_update",
    "DELETE": "fraudsvc_buckets_on_label_delete",
}
EPOCH_SQL = "timestamptz '1970-01-01 00:00:00+00'"
BUCKET_COLUMNS = "(entity, key, width, start, n, amount, frauds, latest)"
FOLD_LOCK_WAIT = "5s"


def key_sql(entity: Entity, alias: str) -> str:
    """The bucket key of a row: its fields joined by the separator (NULL if one is missing)."""
    return f" || '{KEY_SEPARATOR}' || ".join(f"{alias}.{f}::text" for f in entity.fields)


def key_text(values: tuple[str, ...]) -> str:
    return KEY_SEPARATOR.join(values)


def fold_lock_sql(entity: Entity, mode: str) -> str:
    """The advisory lock between a fold (exclusive) and triggers bucketing late rows (shared)."""
    function = "pg_advisory_xact_lock_shared" if mode == "shared" else "pg_advisory_xact_lock"
    return f"{function}({FOLD_LOCK_CLASS}, hashtext('{entity.name}'))"


def _levels_sql(levels: tuple[int, ...]) -> str:
    values = ", ".join(f"({w}, interval '{w} seconds')" for w in levels)
    return f"(VALUES {values}) AS w(width, span)"


def _bucket_start_sql(ts: str) -> str:
    return f"date_bin(w.span, {ts}, {EPOCH_SQL})"


def _entity_rows(
    entities: tuple[Entity, ...], source: str, columns: str, where: str = "TRUE"
) -> str:
    """One row per (entity, transaction) with a complete key: `entity, key, <columns>`."""
    parts = []
    for e in entities:
        key = key_sql(e, "t")
        parts.append(
            f'SELECT \'{e.name}\'::text COLLATE "C" AS entity, ({key}) COLLATE "C" AS key, '
            f"{columns} FROM {source} WHERE {key} IS NOT NULL AND {where}"
        )
    return "\n        UNION ALL ".join(parts)


def _add_rows_sql(rows: str, levels: tuple[int, ...]) -> str:
    """Add transactions (`ts, amount_minor, fraud` per entity row) into their buckets."""
    return f"""INSERT INTO feature_buckets AS b {BUCKET_COLUMNS}
    SELECT e.entity, e.key, w.width, {_bucket_start_sql("e.ts")},
           count(*), sum(e.amount_minor), sum(e.fraud), max(e.ts)
    FROM (
        {rows}
    ) AS e CROSS JOIN {_levels_sql(levels)}
    GROUP BY 1, 2, 3, 4
    ORDER BY 1, 2, 3, 4
    ON CONFLICT (entity, key, width, start) DO UPDATE
        SET n = b.n + EXCLUDED.n, amount = b.amount + EXCLUDED.amount,
            frauds = b.frauds + EXCLUDED.frauds, latest = greatest(b.latest, EXCLUDED.latest)"""


def _add_frauds_sql(rows: str, levels: tuple[int, ...]) -> str:
    """Move fraud counts (`ts, d` per entity row, d = +1 or -1) in the transactions' buckets."""
    return f"""INSERT INTO feature_buckets AS b {BUCKET_COLUMNS}
    SELECT e.entity, e.key, w.width, {_bucket_start_sql("e.ts")}, 0, 0, sum(e.d), max(e.ts)
    FROM (
        {rows}
    ) AS e CROSS JOIN {_levels_sql(levels)}
    GROUP BY 1, 2, 3, 4
    HAVING sum(e.d) <> 0
    ORDER BY 1, 2, 3, 4
    ON CONFLICT (entity, key, width, start) DO UPDATE SET frauds = b.frauds + EXCLUDED.frauds"""


def _statements(
    decl: Declaration,
    source: str,
    columns: str,
    add: str,
) -> list[str]:
    """The trigger's statements: synchronous entities at once, then each deferred entity under
    its shared fold lock and for rows at or before its horizon."""
    entities = decl.used_entities
    now = tuple(e for e in entities if e.name not in decl.deferred)
    builder = _add_rows_sql if add == "rows" else _add_frauds_sql
    out = []
    if now:
        out.append(builder(_entity_rows(now, source, columns), decl.levels) + ";")
    for e in entities:
        if e.name not in decl.deferred:
            continue
        out += [
            f"PERFORM {fold_lock_sql(e, 'shared')};",
            f"SELECT horizon INTO horizon_ FROM feature_entities WHERE name = '{e.name}';",
            builder(_entity_rows((e,), source, columns, "t.ts <= horizon_"), decl.levels) + ";",
        ]
    return out


def _function_sql(name: str, statements: list[str]) -> str:
    body = "\n    ".join(statements)
    return f"""
CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $body$
DECLARE
    horizon_ timestamptz;
BEGIN
    {body}
    RETURN NULL;
END
$body$"""


def insert_function_sql(decl: Declaration) -> str:
    statements = _statements(decl, "new_rows AS t", "t.ts, t.amount_minor, 0 AS fraud", "rows")
    return _function_sql(INSERT_FUNCTION, statements)


_DELTAS = {
    "INSERT": "SELECT transaction_id, 1 AS d FROM new_rows WHERE is_fraud",
    "UPDATE": (
        "SELECT n.transaction_id, n.is_fraud::int - o.is_fraud::int AS d "
        "FROM new_rows AS n JOIN old_rows AS o USING (transaction_id) "
        "WHERE n.is_fraud IS DISTINCT FROM o.is_fraud"
    ),
    "DELETE": "SELECT transaction_id, -1 AS d FROM old_rows WHERE is_fraud",
}


def label_function_sql(op: str, decl: Declaration) -> str:
    source = f"({_DELTAS[op]}) AS d JOIN transactions AS t USING (transaction_id)"
    return _function_sql(LABEL_FUNCTIONS[op], _statements(decl, source, "t.ts, d.d", "frauds"))


def functions_sql(decl: Declaration) -> dict[str, str]:
    return {
        INSERT_FUNCTION: insert_function_sql(decl),
        **{name: label_function_sql(op, decl) for op, name in LABEL_FUNCTIONS.items()},
    }


TRIGGERS = [
    f"""CREATE OR REPLACE TRIGGER buckets_on_insert AFTER INSERT ON transactions
        REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
        EXECUTE FUNCTION {INSERT_FUNCTION}()""",
    f"""CREATE OR REPLACE TRIGGER buckets_on_label_insert AFTER INSERT ON labels
        REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
        EXECUTE FUNCTION {LABEL_FUNCTIONS["INSERT"]}()""",
    f"""CREATE OR REPLACE TRIGGER buckets_on_label_update AFTER UPDATE ON labels
        REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
        EXECUTE FUNCTION {LABEL_FUNCTIONS["UPDATE"]}()""",
    f"""CREATE OR REPLACE TRIGGER buckets_on_label_delete AFTER DELETE ON labels
        REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
        EXECUTE FUNCTION {LABEL_FUNCTIONS["DELETE"]}()""",
]

_STORED_ROWS = "transactions AS t LEFT JOIN labels AS l ON l.transaction_id = t.transaction_id"
_STORED_COLUMNS = "t.ts, t.amount_minor, coalesce(l.is_fraud, false)::int AS fraud"


def rebuild_sql(entity: Entity, levels: tuple[int, ...], up_to: bool = False) -> str:
    """Every bucket of one entity from the stored transactions and labels (with `up_to`, those
    at or before $1: a deferred entity's horizon)."""
    where = "t.ts <= $1" if up_to else "TRUE"
    return _add_rows_sql(_entity_rows((entity,), _STORED_ROWS, _STORED_COLUMNS, where), levels)


def fold_sql(entity: Entity, levels: tuple[int, ...]) -> str:
    """Add the stored rows of (horizon $1, new horizon $2] into a deferred entity's buckets."""
    rows = _entity_rows((entity,), _STORED_ROWS, _STORED_COLUMNS, "t.ts > $1 AND t.ts <= $2")
    return _add_rows_sql(rows, levels)


# --------------------------------------------------------------------------- fold


@dataclass(frozen=True)
class Folded:
    entity: str
    horizon: datetime
    buckets: int
    seconds: float


async def fold(connection: asyncpg.Connection, up_to: datetime | None = None) -> list[Folded]:
    """Move the horizon of every deferred entity this database keeps to `up_to` (default: the
    database's now minus FOLD_LAG), adding the rows in between to its buckets, in steps of
    FOLD_CHUNK. The entities come from the database (`feature_entities`), which the triggers
    follow too, not from the running code's declaration."""
    if up_to is None:
        up_to = await connection.fetchval("SELECT now() - $1::interval", FOLD_LAG)
    rows = await connection.fetch(
        "SELECT name, fields, levels FROM feature_entities WHERE horizon IS NOT NULL ORDER BY name"
    )
    done = []
    for row in rows:
        entity = Entity(row["name"], tuple(row["fields"]))
        sql = fold_sql(entity, tuple(row["levels"]))
        while True:
            started = time.perf_counter()
            async with connection.transaction():
                await connection.execute(f"SET LOCAL lock_timeout = '{FOLD_LOCK_WAIT}'")
                await connection.execute("SET LOCAL work_mem = '64MB'")
                await connection.execute(f"SELECT {fold_lock_sql(entity, 'exclusive')}")
                old = await connection.fetchval(
                    "SELECT horizon FROM feature_entities WHERE name = $1", entity.name
                )
                if old is None or old >= up_to:
                    break
                new = min(up_to, old + FOLD_CHUNK)
                status = await connection.execute(sql, old, new)
                await connection.execute(
                    "UPDATE feature_entities SET horizon = $2 WHERE name = $1", entity.name, new
                )
            done.append(
                Folded(entity.name, new, int(status.split()[-1]), time.perf_counter() - started)
            )
            if new >= up_to:
                break
    return done


async def horizons(connection: asyncpg.Connection) -> dict[str, tuple[datetime, float]]:
    """Each deferred entity's horizon and how far it trails the database's clock (seconds)."""
    rows = await connection.fetch(
        "SELECT name, horizon, extract(epoch FROM now() - horizon)::float8 AS lag "
        "FROM feature_entities WHERE horizon IS NOT NULL"
    )
    return {r["name"]: (r["horizon"], r["lag"]) for r in rows}


# --------------------------------------------------------------------------- sync


@dataclass(frozen=True)
class Built:
    entity: str
    rows: int
    seconds: float


@dataclass(frozen=True)
class SyncReport:
    built: tuple[Built, ...]
    dropped: tuple[str, ...]
    functions_installed: bool
    seconds: float


StoredEntities = dict[str, tuple[list[str], list[int], bool]]


def wanted_entities(decl: Declaration) -> StoredEntities:
    return {
        e.name: (list(e.fields), list(decl.levels), e.name in decl.deferred)
        for e in decl.used_entities
    }


def missing_entities(decl: Declaration, stored: StoredEntities) -> list[str]:
    """Entities of `decl` whose buckets this database does not keep (or keeps differently)."""
    wanted = wanted_entities(decl)
    return [name for name in wanted if stored.get(name) != wanted[name]]


STORED_ENTITIES_SQL = (
    "SELECT name, fields, levels, horizon IS NOT NULL AS deferred FROM feature_entities"
)


def stored_from(rows: list[asyncpg.Record]) -> StoredEntities:
    return {r["name"]: (list(r["fields"]), list(r["levels"]), r["deferred"]) for r in rows}


def _raw_index_sql(field: str) -> str:
    return f"CREATE INDEX IF NOT EXISTS transactions_by_{field}_ts ON transactions ({field}, ts)"


async def _has_raw_index(connection: asyncpg.Connection, field: str) -> bool:
    """Whether an index of transactions already leads with (field, ts): the migrations' own
    (customer, terminal) do. A second one costs every write an index entry per row (and, with
    partitions, a lock per partition on every statement) and buys nothing."""
    found = await connection.fetchval(
        "SELECT count(*) FROM pg_indexes WHERE schemaname = current_schema() "
        "AND tablename = 'transactions' AND indexdef LIKE $1",
        f"% USING btree ({field}, ts)%",
    )
    return bool(found)


async def sync(connection: asyncpg.Connection, decl: Declaration) -> SyncReport:
    """Make the triggers and buckets follow `decl`'s entities (see the module docstring)."""
    started = time.perf_counter()
    wanted = wanted_entities(decl)
    functions = functions_sql(decl)
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock($1)", SYNC_LOCK)
        stored = stored_from(await connection.fetch(STORED_ENTITIES_SQL))
        installed = await _installed_functions(connection)
        same_functions = all(installed.get(name) == _body(sql) for name, sql in functions.items())
        if stored == wanted and same_functions:
            return SyncReport((), (), False, time.perf_counter() - started)
        # writers wait until the buckets match the triggers; readers go on
        await connection.execute("LOCK TABLE transactions, labels IN SHARE ROW EXCLUSIVE MODE")
        await connection.execute("SET LOCAL work_mem = '256MB'")
        for sql in functions.values():
            await connection.execute(sql)
        for sql in TRIGGERS:
            await connection.execute(sql)
        dropped = tuple(name for name in stored if stored[name] != wanted.get(name))
        for name in dropped:
            await connection.execute("DELETE FROM feature_buckets WHERE entity = $1", name)
            await connection.execute("DELETE FROM feature_entities WHERE name = $1", name)
        horizon = await connection.fetchval("SELECT now() - $1::interval", FOLD_LAG)
        built = []
        for e in decl.used_entities:
            if stored.get(e.name) == wanted[e.name]:
                continue
            t0 = time.perf_counter()
            deferred = e.name in decl.deferred
            if not await _has_raw_index(connection, e.fields[0]):
                await connection.execute(_raw_index_sql(e.fields[0]))
            sql = rebuild_sql(e, decl.levels, up_to=deferred)
            status = await connection.execute(sql, *((horizon,) if deferred else ()))
            count = int(status.split()[-1])
            seconds = time.perf_counter() - t0
            await connection.execute(
                "INSERT INTO feature_entities (name, fields, levels, horizon, built_at, rows, "
                "seconds) VALUES ($1, $2, $3, $4, now(), $5, $6)",
                e.name,
                list(e.fields),
                list(decl.levels),
                horizon if deferred else None,
                count,
                seconds,
            )
            built.append(Built(e.name, count, seconds))
    if built:
        await connection.execute("ANALYZE feature_buckets")
    return SyncReport(
        tuple(built),
        tuple(n for n in dropped if n not in wanted),
        True,
        time.perf_counter() - started,
    )


def _body(sql: str) -> str:
    return sql.split("$body$")[1]


async def _installed_functions(connection: asyncpg.Connection) -> dict[str, str]:
    rows = await connection.fetch(
        "SELECT proname, prosrc FROM pg_proc WHERE proname = ANY($1::text[])",
        [INSERT_FUNCTION, *LABEL_FUNCTIONS.values()],
    )
    return {r["proname"]: r["prosrc"] for r in rows}
