"""Retention: drop whole months of history once they are older than the kept span.

`fraudsvc prune --keep-days N` and the worker's daily run (FRAUDSVC_RETENTION_DAYS) drop the
monthly partitions of transactions and predictions (see `partitions`) whose whole month ends
before the cutoff: the newest stored transaction time (or now, if that is earlier: a replay of
old data keeps its own clock) minus N days. A month is kept, and the report says why, when
anything still needs it:

- a window: N must cover the longest window plus its delay (the terminal's 30 days end a
  label delay back), or the prune is refused, so no feature of a new transaction ever reads a
  dropped row;
- an explanation that is pending or running (the job reads the prediction);
- an open review case (an analyst still has to see the transaction);
- a recent label: one given or changed within the last N days (wall clock), which the next
  `fraudsvc train` from the database should see with its transaction.

With a month go its predictions, and the labels, explanations and closed review cases of its
transactions; the feature buckets that end before the oldest transaction left are deleted too
(they only summarise dropped rows). The ids' keys in `transaction_ids` stay: a replayed old id
is refused with a 409 instead of being scored a second time, as if new, against history that
no longer holds it. They cost about 100 bytes a transaction (make bench's storage section), an
eighth of the rows they stand for; trimming them is a DELETE on their `ts` if ever needed.

Whole partitions go with a catalogue change (DETACH, DROP), in one database transaction per
month: no row-by-row DELETE of transactions, no dead tuples, and a failure leaves the month
whole. Its labels, explanations and cases are deleted first; only then are the parent tables
locked (DETACH and DROP take an exclusive lock, and scoring writes wait behind it) until the
commit, which the report measures. The lock waits at most `partitions.LOCK_WAIT` for the writes
in flight and gives up otherwise (the next run retries).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import asyncpg

from fraudsvc.db.partitions import LOCK_WAIT, PARTITION_LOCK, Partition, partitions
from fraudsvc.features import Declaration

DAY = 86_400


def minimum_days(decl: Declaration) -> int:
    """The fewest days of history the declaration's windows read (longest window + delay)."""
    longest = max((s.seconds + s.delay for s in decl.spans), default=0)
    return max(1, math.ceil(longest / DAY))


@dataclass(frozen=True)
class Month:
    """One monthly partition older than the cutoff: what it holds, and whether it went."""

    name: str
    transactions: int
    predictions: int
    labels: int
    explanations: int
    review_cases: int
    kept_because: str | None = None
    lock_seconds: float = 0.0
    """How long the parent tables were locked (scoring writes waited) to drop it."""

    @property
    def dropped(self) -> bool:
        return self.kept_because is None


@dataclass(frozen=True)
class PruneReport:
    keep_days: int
    dry_run: bool
    reference: datetime | None
    cutoff: datetime | None
    months: tuple[Month, ...] = ()
    buckets: int = 0
    seconds: float = 0.0

    @property
    def dropped(self) -> tuple[Month, ...]:
        return tuple(m for m in self.months if m.dropped)

    def lines(self) -> list[str]:
        """What was (or, in a dry run, would be) dropped, for the log and the CLI."""
        verb = "would drop" if self.dry_run else "dropped"
        if self.cutoff is None:
            return ["retention: no transactions stored, nothing to prune"]
        out = [
            f"retention: keeping {self.keep_days} days of transaction time: cutoff "
            f"{self.cutoff:%Y-%m-%d %H:%M} UTC (newest transaction {self.reference:%Y-%m-%d %H:%M})"
        ]
        for m in self.months:
            what = (
                f"{m.transactions:,} transactions, {m.predictions:,} predictions, "
                f"{m.labels:,} labels, {m.explanations:,} explanations, "
                f"{m.review_cases:,} review cases"
            )
            if m.dropped:
                locked = "" if self.dry_run else f" (writes held {m.lock_seconds * 1e3:.0f} ms)"
                out.append(f"retention: {verb} {m.name}: {what}{locked}")
            else:
                out.append(f"retention: kept {m.name} ({what}): {m.kept_because}")
        rows = sum(m.transactions for m in self.dropped)
        out.append(
            f"retention: {verb} {len(self.dropped)} month(s), {rows:,} transactions, "
            f"{self.buckets:,} feature buckets, in {self.seconds:.2f} s"
        )
        return out


BLOCKERS_SQL = """
SELECT
    (SELECT count(*) FROM explanations AS e
     WHERE e.status IN ('pending', 'running')
       AND EXISTS (SELECT 1 FROM {part} AS t WHERE t.transaction_id = e.transaction_id))
        AS open_explanations,
    (SELECT count(*) FROM review_cases AS c
     WHERE c.status = 'open'
       AND EXISTS (SELECT 1 FROM {part} AS t WHERE t.transaction_id = c.transaction_id))
        AS open_cases,
    (SELECT count(*) FROM labels AS l JOIN {part} AS t USING (transaction_id)
     WHERE l.updated_at > $1) AS recent_labels
"""

COUNTS_SQL = """
SELECT
    (SELECT count(*) FROM {part}) AS transactions,
    (SELECT count(*) FROM {predictions}) AS predictions,
    (SELECT count(*) FROM labels AS l JOIN {part} AS t USING (transaction_id)) AS labels,
    (SELECT count(*) FROM explanations AS e JOIN {part} AS t USING (transaction_id))
        AS explanations,
    (SELECT count(*) FROM review_cases AS c JOIN {part} AS t USING (transaction_id))
        AS review_cases
"""

BUCKETS_WHERE = "start <= $1::timestamptz - width * interval '1 second'"
"""Buckets that end at or before $1 (a bucket covers [start, start + width))."""


def _blocker_text(row: asyncpg.Record) -> str | None:
    reasons = []
    if row["open_explanations"]:
        reasons.append(f"{row['open_explanations']} explanation(s) pending or running")
    if row["open_cases"]:
        reasons.append(f"{row['open_cases']} open review case(s)")
    if row["recent_labels"]:
        reasons.append(f"{row['recent_labels']} label(s) given within the kept days")
    return "; ".join(reasons) or None


async def _month(
    connection: asyncpg.Connection, part: Partition, recent: datetime, dry_run: bool
) -> Month:
    """Count a month, and drop it unless something needs it (one database transaction)."""
    predictions = part.name.replace("transactions_", "predictions_", 1)
    exists = await connection.fetchval("SELECT to_regclass($1) IS NOT NULL", predictions)
    source = predictions if exists else "(SELECT 1 WHERE false) AS none"
    async with connection.transaction():
        await connection.execute(f"SET LOCAL lock_timeout = '{LOCK_WAIT}'")
        await connection.execute("SELECT pg_advisory_xact_lock($1)", PARTITION_LOCK)
        if not dry_run:
            # writers of this month wait from here on, so what is counted is what goes
            tables = f"{part.name}, {predictions}" if exists else part.name
            await connection.execute(f"LOCK TABLE {tables} IN ACCESS EXCLUSIVE MODE")
        counts = await connection.fetchrow(COUNTS_SQL.format(part=part.name, predictions=source))
        blockers = await connection.fetchrow(BLOCKERS_SQL.format(part=part.name), recent)
        month = Month(
            name=part.name.removeprefix("transactions_"),
            transactions=counts["transactions"],
            predictions=counts["predictions"],
            labels=counts["labels"],
            explanations=counts["explanations"],
            review_cases=counts["review_cases"],
            kept_because=_blocker_text(blockers),
        )
        if dry_run or not month.dropped:
            return month
        # (inside a caller's transaction, the bench's rolled-back timing, the previous month's
        # table is still there: ON COMMIT has not come)
        await connection.execute("DROP TABLE IF EXISTS pg_temp.pruned_ids")
        await connection.execute(
            f"CREATE TEMP TABLE pruned_ids ON COMMIT DROP AS SELECT transaction_id FROM {part.name}"
        )
        # what hangs on the ids goes first, row by row, while scoring writes go on (the keys
        # stay, see the module docstring); the label triggers take the fraud counts out of the
        # month's buckets, which are deleted below anyway
        for table in ("review_cases", "explanations", "labels"):
            await connection.execute(
                f"DELETE FROM {table} AS x USING pruned_ids AS g "
                "WHERE x.transaction_id = g.transaction_id"
            )
        # then the catalogue changes: they lock the parent tables until the commit, briefly
        locked = time.perf_counter()
        if exists:
            await connection.execute(f"DROP TABLE {predictions}")
        await connection.execute(f"ALTER TABLE transactions DETACH PARTITION {part.name}")
        await connection.execute(f"DROP TABLE {part.name}")
    return replace(month, lock_seconds=time.perf_counter() - locked)


async def prune(
    connection: asyncpg.Connection,
    keep_days: int,
    decl: Declaration,
    dry_run: bool = False,
    now: datetime | None = None,
) -> PruneReport:
    """Drop (or with `dry_run` only report) the months older than `keep_days`; see the module
    docstring. Raises ValueError when `keep_days` is shorter than the declaration's windows."""
    started = time.perf_counter()
    need = minimum_days(decl)
    if keep_days < need:
        raise ValueError(
            f"keep-days {keep_days} is shorter than the history the features read: the longest "
            f"window plus its delay needs {need} days"
        )
    now = now or datetime.now(UTC)
    newest = await connection.fetchval("SELECT max(ts) FROM transactions")
    if newest is None:
        return PruneReport(keep_days, dry_run, None, None)
    reference = min(now, newest)
    cutoff = reference - timedelta(days=keep_days)
    recent = now - timedelta(days=keep_days)
    months = []
    for part in await partitions(connection, "transactions"):
        if part.upper > cutoff:
            break
        months.append(await _month(connection, part, recent, dry_run))
    dropped = [m for m in months if m.dropped]
    buckets = 0
    if dropped:
        # the oldest row left (in a dry run: outside the months that would go)
        oldest = await connection.fetchval(
            "SELECT min(ts) FROM transactions WHERE NOT (tableoid::regclass::text = ANY($1))",
            [f"transactions_{m.name}" for m in dropped],
        )
        bound = cutoff if oldest is None else min(cutoff, oldest)
        if dry_run:
            buckets = await connection.fetchval(
                f"SELECT count(*) FROM feature_buckets WHERE {BUCKETS_WHERE}", bound
            )
        else:
            status = await connection.execute(
                f"DELETE FROM feature_buckets WHERE {BUCKETS_WHERE}", bound
            )
            buckets = int(status.split()[-1])
    return PruneReport(
        keep_days,
        dry_run,
        reference,
        cutoff,
        tuple(months),
        buckets,
        time.perf_counter() - started,
    )
