"""Time buckets: per-entity partial aggregates that make a window's cost independent of volume.

`feature_buckets` holds, per entity (a declared key such as the customer, or the customer and the
device), key value, bucket width (a day, an hour, a minute) and bucket start: the number of
transactions, their amount in minor units, how many are labelled fraud, and the latest timestamp.
Triggers keep it, in the same database transaction as the rows they summarise, for every writer:
the scoring write, `fraudsvc backfill`, a label that arrives, is corrected or removed (the fraud
count moves in every bucket of that transaction, once), and anything else. Statement-level
triggers read transition tables, so a bulk import aggregates per bucket before it writes, and
every statement touches bucket rows in one global order (no deadlocks). Transactions are immutable:
updating their fields or deleting rows is refused, since a removed row could not be taken out of
`latest`; old history goes by whole partitions (retention).

`sync()` (run by `fraudsvc migrate`) makes the database follow a declaration: it installs the
trigger functions for the declared entities and builds the buckets of any entity that is new or
changed from the stored rows, under a lock that holds writers back meanwhile, so that the buckets
are exact from the first read.

The window read (`WindowRead`) is one statement from one snapshot: for every span, the whole
buckets inside it plus the raw rows of the partial buckets at its two ends (finer than a minute),
and whether the transaction id is already stored. The raw-row definition stays in the tests as the
oracle the buckets are compared with.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from fraudsvc.features.declaration import Declaration, Entity, Span
from fraudsvc.features.online import entity_key
from fraudsvc.features.spans import (
    SpanValue,
    epoch_us,
    from_epoch_us,
    span_range,
    split,
)
from fraudsvc.transaction import Transaction

KEY_SEPARATOR = "|"  # in no field's charset (ids, codes, canonical IPs)
SYNC_LOCK = 0x6672617564 + 1  # pg_advisory_xact_lock key: one sync at a time
INSERT_FUNCTION = "fraudsvc_buckets_on_insert"
LABEL_FUNCTIONS = {
    "INSERT": "fraudsvc_buckets_on_label_insert",
    "UPDATE": "fraudsvc_buckets_on_label_update",
    "DELETE": "fraudsvc_buckets_on_label_delete",
}
EPOCH_SQL = "timestamptz '1970-01-01 00:00:00+00'"
Plan = list[list[tuple[int, int]] | None]


def key_sql(entity: Entity, alias: str) -> str:
    """The bucket key of a row: its fields joined by the separator (NULL if one is missing)."""
    return f" || '{KEY_SEPARATOR}' || ".join(f"{alias}.{f}::text" for f in entity.fields)


def key_text(values: tuple[str, ...]) -> str:
    return KEY_SEPARATOR.join(values)


def _levels_sql(levels: tuple[int, ...]) -> str:
    values = ", ".join(f"({w}, interval '{w} seconds')" for w in levels)
    return f"(VALUES {values}) AS w(width, span)"


def _bucket_start_sql(ts: str) -> str:
    return f"date_bin(w.span, {ts}, {EPOCH_SQL})"


def _entity_rows(entities: tuple[Entity, ...], source: str, columns: str) -> str:
    """One row per (entity, transaction) with a complete key: `entity, key, <columns>`."""
    parts = []
    for e in entities:
        key = key_sql(e, "t")
        parts.append(
            f'SELECT \'{e.name}\'::text COLLATE "C" AS entity, ({key}) COLLATE "C" AS key, '
            f"{columns} "
            f"FROM {source} WHERE {key} IS NOT NULL"
        )
    return "\n        UNION ALL ".join(parts)


def insert_function_sql(entities: tuple[Entity, ...], levels: tuple[int, ...]) -> str:
    rows = _entity_rows(entities, "new_rows AS t", "t.ts, t.amount_minor")
    return f"""
CREATE OR REPLACE FUNCTION {INSERT_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
    INSERT INTO feature_buckets AS b (entity, key, width, start, n, amount, frauds, latest)
    SELECT e.entity, e.key, w.width, {_bucket_start_sql("e.ts")},
           count(*), sum(e.amount_minor), 0, max(e.ts)
    FROM (
        {rows}
    ) AS e CROSS JOIN {_levels_sql(levels)}
    GROUP BY 1, 2, 3, 4
    ORDER BY 1, 2, 3, 4
    ON CONFLICT (entity, key, width, start) DO UPDATE
        SET n = b.n + EXCLUDED.n, amount = b.amount + EXCLUDED.amount,
            latest = greatest(b.latest, EXCLUDED.latest);
    RETURN NULL;
END
$body$"""


_DELTAS = {
    "INSERT": "SELECT transaction_id, 1 AS d FROM new_rows WHERE is_fraud",
    "UPDATE": (
        "SELECT n.transaction_id, n.is_fraud::int - o.is_fraud::int AS d "
        "FROM new_rows AS n JOIN old_rows AS o USING (transaction_id) "
        "WHERE n.is_fraud IS DISTINCT FROM o.is_fraud"
    ),
    "DELETE": "SELECT transaction_id, -1 AS d FROM old_rows WHERE is_fraud",
}


def label_function_sql(op: str, entities: tuple[Entity, ...], levels: tuple[int, ...]) -> str:
    source = f"({_DELTAS[op]}) AS d JOIN transactions AS t USING (transaction_id)"
    rows = _entity_rows(entities, source, "t.ts, d.d")
    return f"""
CREATE OR REPLACE FUNCTION {LABEL_FUNCTIONS[op]}() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
    INSERT INTO feature_buckets AS b (entity, key, width, start, n, amount, frauds, latest)
    SELECT e.entity, e.key, w.width, {_bucket_start_sql("e.ts")}, 0, 0, sum(e.d), max(e.ts)
    FROM (
        {rows}
    ) AS e CROSS JOIN {_levels_sql(levels)}
    GROUP BY 1, 2, 3, 4
    HAVING sum(e.d) <> 0
    ORDER BY 1, 2, 3, 4
    ON CONFLICT (entity, key, width, start) DO UPDATE SET frauds = b.frauds + EXCLUDED.frauds;
    RETURN NULL;
END
$body$"""


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


def rebuild_sql(entity: Entity, levels: tuple[int, ...]) -> str:
    """Every bucket of one entity, from the stored transactions and labels."""
    rows = _entity_rows(
        (entity,),
        "transactions AS t LEFT JOIN labels AS l ON l.transaction_id = t.transaction_id",
        "t.ts, t.amount_minor, coalesce(l.is_fraud, false)::int AS fraud",
    )
    return f"""
INSERT INTO feature_buckets (entity, key, width, start, n, amount, frauds, latest)
SELECT e.entity, e.key, w.width, {_bucket_start_sql("e.ts")},
       count(*), sum(e.amount_minor), sum(e.fraud), max(e.ts)
FROM ({rows}) AS e CROSS JOIN {_levels_sql(levels)}
GROUP BY 1, 2, 3, 4"""


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


def _raw_index_sql(field: str) -> str:
    return f"CREATE INDEX IF NOT EXISTS transactions_by_{field}_ts ON transactions ({field}, ts)"


async def sync(connection: asyncpg.Connection, decl: Declaration) -> SyncReport:
    """Make the triggers and buckets follow `decl`'s entities (see the module docstring)."""
    started = time.perf_counter()
    entities = decl.used_entities
    levels = decl.levels
    wanted = {e.name: (list(e.fields), list(levels)) for e in entities}
    functions = [insert_function_sql(entities, levels)] + [
        label_function_sql(op, entities, levels) for op in LABEL_FUNCTIONS
    ]
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock($1)", SYNC_LOCK)
        stored = {
            r["name"]: (list(r["fields"]), list(r["levels"]))
            for r in await connection.fetch("SELECT name, fields, levels FROM feature_entities")
        }
        installed = await _installed_functions(connection)
        expected = {INSERT_FUNCTION: functions[0]} | {
            name: functions[i + 1] for i, name in enumerate(LABEL_FUNCTIONS.values())
        }
        same_functions = all(installed.get(name) == _body(sql) for name, sql in expected.items())
        if stored == wanted and same_functions:
            return SyncReport((), (), False, time.perf_counter() - started)
        # writers wait until the buckets match the triggers; readers go on
        await connection.execute("LOCK TABLE transactions, labels IN SHARE ROW EXCLUSIVE MODE")
        await connection.execute("SET LOCAL work_mem = '256MB'")
        for sql in functions:
            await connection.execute(sql)
        for sql in TRIGGERS:
            await connection.execute(sql)
        dropped = tuple(name for name in stored if stored[name] != wanted.get(name))
        for name in dropped:
            await connection.execute("DELETE FROM feature_buckets WHERE entity = $1", name)
            await connection.execute("DELETE FROM feature_entities WHERE name = $1", name)
        built = []
        for e in entities:
            if stored.get(e.name) == wanted[e.name]:
                continue
            t0 = time.perf_counter()
            await connection.execute(_raw_index_sql(e.fields[0]))
            status = await connection.execute(rebuild_sql(e, levels))
            count = int(status.split()[-1])
            seconds = time.perf_counter() - t0
            await connection.execute(
                "INSERT INTO feature_entities (name, fields, levels, built_at, rows, seconds) "
                "VALUES ($1, $2, $3, now(), $4, $5)",
                e.name,
                list(e.fields),
                list(levels),
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


def missing_entities(
    decl: Declaration, stored: dict[str, tuple[list[str], list[int]]]
) -> list[str]:
    """Entities of `decl` whose buckets this database does not keep (or keeps differently)."""
    return [
        e.name
        for e in decl.used_entities
        if stored.get(e.name) != (list(e.fields), list(decl.levels))
    ]


# --------------------------------------------------------------------------- the read


class WindowRead:
    """The one statement that reads every span of a declaration for one transaction."""

    def __init__(self, decl: Declaration) -> None:
        self.decl = decl
        self.entities = decl.used_entities
        self.sql = self._sql()

    def _sql(self) -> str:
        parts = [
            """SELECT 0 AS kind, p.i, x.n, x.amount, x.frauds, x.latest
FROM unnest($2::int[], $3::text[], $4::text[], $5::int[], $6::timestamptz[], $7::timestamptz[])
    AS p(i, entity, key, width, lo, hi)
CROSS JOIN LATERAL (
    SELECT coalesce(sum(b.n), 0)::bigint AS n, coalesce(sum(b.amount), 0)::bigint AS amount,
           coalesce(sum(b.frauds), 0)::bigint AS frauds, max(b.latest) AS latest
    FROM feature_buckets AS b
    WHERE b.entity = p.entity AND b.key = p.key AND b.width = p.width
      AND b.start >= p.lo AND b.start < p.hi
) AS x"""
        ]
        n = 8
        for kind, e in enumerate(self.entities, start=1):
            keys = " AND ".join(f"t.{f} = ${n + 3 + j}" for j, f in enumerate(e.fields))
            parts.append(
                f"""SELECT {kind}, r.i, x.n, x.amount, x.frauds, x.latest
FROM unnest(${n}::int[], ${n + 1}::timestamptz[], ${n + 2}::timestamptz[]) AS r(i, lo, hi)
CROSS JOIN LATERAL (
    SELECT count(*)::bigint AS n, coalesce(sum(t.amount_minor), 0)::bigint AS amount,
           count(*) FILTER (WHERE l.is_fraud)::bigint AS frauds, max(t.ts) AS latest
    FROM transactions AS t LEFT JOIN labels AS l ON l.transaction_id = t.transaction_id
    WHERE {keys} AND t.ts >= r.lo AND t.ts < r.hi
) AS x"""
            )
            n += 3 + len(e.fields)
        parts.append(
            "SELECT -1, 0, count(*)::bigint, 0, 0, NULL FROM transactions WHERE transaction_id = $1"
        )
        return "\nUNION ALL\n".join(parts)

    def params(self, tx: Transaction) -> tuple[list[object], Plan]:
        """The statement's arguments, and per span the (kind, piece) pairs that sum to it (None
        when the entity's key has a missing field)."""
        t_us = epoch_us(tx.timestamp)
        buckets: dict[tuple[str, str, int, int, int], int] = {}
        raws: dict[str, dict[tuple[int, int], int]] = {e.name: {} for e in self.entities}
        keys: dict[str, tuple[str, ...] | None] = {
            e.name: entity_key(self.decl, e.name, tx) for e in self.entities
        }
        kinds = {e.name: i for i, e in enumerate(self.entities, start=1)}
        plan: Plan = []
        for span in self.decl.spans:
            key = keys[span.entity]
            if key is None:
                plan.append(None)
                continue
            pieces = split(*span_range(span, t_us), self.decl.levels)
            mine = []
            for width, lo, hi in pieces.buckets:
                piece = (span.entity, key_text(key), width, lo, hi)
                mine.append((0, buckets.setdefault(piece, len(buckets))))
            own = raws[span.entity]
            for lo, hi in pieces.raw:
                mine.append((kinds[span.entity], own.setdefault((lo, hi), len(own))))
            plan.append(mine)
        args: list[object] = [
            tx.transaction_id,
            list(buckets.values()),
            [p[0] for p in buckets],
            [p[1] for p in buckets],
            [p[2] for p in buckets],
            [from_epoch_us(p[3]) for p in buckets],
            [from_epoch_us(p[4]) for p in buckets],
        ]
        for e in self.entities:
            own = raws[e.name]
            key = keys[e.name]
            args += [
                list(own.values()),
                [from_epoch_us(lo) for lo, _ in own],
                [from_epoch_us(hi) for _, hi in own],
                *(key if key is not None else (None,) * len(e.fields)),
            ]
        return args, plan

    def values(
        self, rows: list[asyncpg.Record], plan: Plan
    ) -> tuple[bool, dict[Span, SpanValue | None]]:
        """Whether the id is stored, and each span's aggregates (None: the key is missing)."""
        pieces: dict[tuple[int, int], SpanValue] = {}
        exists = False
        for r in rows:
            if r["kind"] == -1:
                exists = r["n"] > 0
                continue
            latest: datetime | None = r["latest"]
            pieces[(r["kind"], r["i"])] = SpanValue(
                r["n"], r["amount"], r["frauds"], None if latest is None else epoch_us(latest)
            )
        out: dict[Span, SpanValue | None] = {}
        for span, mine in zip(self.decl.spans, plan, strict=True):
            if mine is None:
                out[span] = None
                continue
            total = SpanValue()
            for piece in mine:
                total = total + pieces[piece]
            out[span] = total
        return exists, out
