"""The window read: every span of a declaration for one transaction, in one statement.

For each span (an entity's window) the statement sums the whole buckets inside it and the raw
rows of the partial buckets at its two ends (finer than a minute), so the rows it touches are
bounded whatever the entity's volume. For a deferred entity (see `buckets`), whose buckets hold
the rows up to its horizon, the edge rows are those up to the horizon and the rows of the span
above the horizon are read raw; in production the horizon trails the clock by a minute and a
terminal's window ends a label delay back, so that part is empty. One statement is one
snapshot: the buckets, the horizon and the raw rows agree. It also says whether the transaction
id is already stored (idempotency: its key in `transaction_ids`, kept even when retention has
dropped the transaction's month). The raw-row definition stays in the tests as the oracle.

The statement's arguments and the sum of its rows back into spans run on every request: they
are built in `window_plan.py` from what the declaration and the transaction's minute decide.
"""

from __future__ import annotations

import asyncpg

from fraudsvc.db.buckets import EPOCH_SQL
from fraudsvc.db.window_plan import Plan, WindowPlan
from fraudsvc.features.declaration import Declaration, Entity, Span
from fraudsvc.features.spans import SpanValue
from fraudsvc.transaction import Transaction

US = "interval '1 microsecond'"
"""Times travel as integer microseconds since the epoch (cheaper to send than timestamps) and
become timestamps in the statement: `EPOCH + n * 1 µs` is exact."""

LATEST_US = "(extract(epoch FROM x.latest) * 1000000)::bigint"
"""The latest timestamp back as integer microseconds (extract gives an exact numeric)."""

BUCKETS_SQL = f"""SELECT 0 AS kind, p.i, x.n, x.amount, x.frauds, {LATEST_US} AS latest
FROM (
    SELECT i, entity, key, width, {EPOCH_SQL} + lo * {US} AS lo, {EPOCH_SQL} + hi * {US} AS hi
    FROM unnest($2::text::int[], $3::text::text[], $4::text::text[], $5::text::int[],
                $6::text::int8[], $7::text::int8[])
        AS u(i, entity, key, width, lo, hi)
) AS p
CROSS JOIN LATERAL (
    SELECT coalesce(sum(b.n), 0)::bigint AS n, coalesce(sum(b.amount), 0)::bigint AS amount,
           coalesce(sum(b.frauds), 0)::bigint AS frauds, max(b.latest) AS latest
    FROM feature_buckets AS b
    WHERE b.entity = p.entity AND b.key = p.key AND b.width = p.width
      AND b.start >= p.lo AND b.start < p.hi
) AS x"""

RAW_COLUMNS = """count(*)::bigint AS n, coalesce(sum(t.amount_minor), 0)::bigint AS amount,
           count(*) FILTER (WHERE l.is_fraud)::bigint AS frauds, max(t.ts) AS latest
    FROM transactions AS t LEFT JOIN labels AS l ON l.transaction_id = t.transaction_id"""


BOUNDS = "AND t.ts >= {epoch} + ${lo}::int8 * {us} AND t.ts < {epoch} + ${hi}::int8 * {us}"
"""Every raw piece also lies within the statement's overall range (its last two parameters):
bounds that PostgreSQL knows when execution starts, so it prunes the monthly partitions of
transactions outside them once per statement (initial pruning) instead of carrying every
partition's scan into each piece's loop."""


def _raw_sql(kind: int, entity: Entity, first: int, deferred: bool, bounds: int) -> str:
    """Raw rows of one entity over its pieces: parameters $first.. are piece ids, lows, highs
    (and for a deferred entity whether each piece is the part above the horizon), then the
    key's values."""
    n = first
    keys_at = n + (4 if deferred else 3)
    keys = " AND ".join(f"t.{f} = ${keys_at + j}" for j, f in enumerate(entity.fields))
    keys += " " + BOUNDS.format(epoch=EPOCH_SQL, us=US, lo=bounds, hi=bounds + 1)
    columns = f"i, {EPOCH_SQL} + lo * {US} AS lo, {EPOCH_SQL} + hi * {US} AS hi"
    if not deferred:
        return f"""SELECT {kind}, r.i, x.n, x.amount, x.frauds, {LATEST_US}
FROM (
    SELECT {columns}
    FROM unnest(${n}::text::int[], ${n + 1}::text::int8[], ${n + 2}::text::int8[]) AS u(i, lo, hi)
) AS r
CROSS JOIN LATERAL (
    SELECT {RAW_COLUMNS}
    WHERE {keys} AND t.ts >= r.lo AND t.ts < r.hi
) AS x"""
    # bucketed rows are those at or before the horizon: edges below it, the rest raw above it
    return f"""SELECT {kind}, r.i, x.n, x.amount, x.frauds, {LATEST_US}
FROM (
    SELECT {columns}, above
    FROM unnest(${n}::text::int[], ${n + 1}::text::int8[], ${n + 2}::text::int8[],
                ${n + 3}::text::bool[])
        AS u(i, lo, hi, above)
) AS r
CROSS JOIN (
    SELECT coalesce(max(horizon), '-infinity') + interval '1 microsecond' AS above_from
    FROM feature_entities WHERE name = '{entity.name}'
) AS h
CROSS JOIN LATERAL (
    SELECT {RAW_COLUMNS}
    WHERE {keys}
      AND t.ts >= CASE WHEN r.above THEN greatest(r.lo, h.above_from) ELSE r.lo END
      AND t.ts < CASE WHEN r.above THEN r.hi ELSE least(r.hi, h.above_from) END
) AS x"""


class WindowRead:
    """The one statement that reads every span of a declaration for one transaction."""

    def __init__(self, decl: Declaration) -> None:
        self.decl = decl
        self.entities = decl.used_entities
        parts = [BUCKETS_SQL]
        n = 8
        bounds = n + sum(
            (4 if e.name in decl.deferred else 3) + len(e.fields) for e in self.entities
        )
        for kind, e in enumerate(self.entities, start=1):
            deferred = e.name in decl.deferred
            parts.append(_raw_sql(kind, e, n, deferred, bounds))
            n += (4 if deferred else 3) + len(e.fields)
        parts.append(
            "SELECT -1, 0, count(*)::bigint, 0, 0, NULL FROM transaction_ids "
            "WHERE transaction_id = $1"
        )
        self.sql = "\nUNION ALL\n".join(parts)
        self.plan = WindowPlan(decl)

    def params(self, tx: Transaction) -> tuple[list[object], Plan]:
        """The statement's arguments (arrays as text literals), and the plan that sums its
        pieces back into spans."""
        return self.plan.wire_params(tx)

    def values(
        self, rows: list[asyncpg.Record], plan: Plan
    ) -> tuple[bool, dict[Span, SpanValue | None]]:
        """Whether the id is stored, and each span's aggregates (None: the key is missing)."""
        return self.plan.values(rows, plan)
