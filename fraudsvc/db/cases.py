"""The review queue's cases: the queue in priority order, claims, the case's surroundings, and
the verdict that closes a case.

Priority (documented in the README's "Review queue"): the model's score counts most, a larger
amount and a longer wait move a case up:

    priority = score + 0.3 * log10(1 + amount) / 6 + 0.2 * min(age in hours, 48) / 48

(an amount of 1,000,000 adds 0.3; two days' wait adds 0.2). Ties go to the older case.

A claim is a conditional update: it succeeds only on an open case that nobody else holds, or
whose holder's claim has expired, so two analysts never work one case. The verdict runs in one
transaction: it closes the case (only under the analyst's own live claim), writes the label
through the label API's own statement, adds the optional list entry and the audit row; all of it
commits or none of it does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import msgspec

from fraudsvc.db import audit, lists
from fraudsvc.db.engine import pool
from fraudsvc.db.queries import fetch_many, outage_guard, upsert_label
from fraudsvc.transaction import AMOUNT_SCALE

Verdict = Literal["fraud", "genuine"]
ClaimOutcome = Literal["claimed", "held", "closed", "unknown"]

PRIORITY_SQL = (
    "(p.score + 0.3 * log(1 + t.amount_minor / "
    f"{AMOUNT_SCALE}.0) / 6 + 0.2 * least(extract(epoch FROM now() - c.opened_at) / 3600.0, 48) "
    "/ 48)"
)


@dataclass(frozen=True)
class QueueRow:
    transaction_id: str
    opened_at: datetime
    age_seconds: float
    amount_minor: int
    customer_id: str
    terminal_id: str
    score: float
    decision: str
    decided_by: str
    priority: float
    claimed_by: str | None
    claimed_until: datetime | None
    attributes: dict[str, Any] | None


@dataclass(frozen=True)
class QueueFilter:
    decision: str | None = None
    rule: str | None = None
    terminal: str | None = None


@dataclass(frozen=True)
class CaseState:
    transaction_id: str
    status: str
    opened_at: datetime
    claimed_by: str | None
    claimed_until: datetime | None
    closed_by: str | None
    closed_at: datetime | None
    verdict: str | None
    note: str | None


@dataclass(frozen=True)
class Neighbour:
    """A transaction of the same customer or terminal, with its decision and label."""

    transaction_id: str
    timestamp: datetime
    amount_minor: int
    customer_id: str
    terminal_id: str
    score: float | None
    decision: str | None
    is_fraud: bool | None
    label_source: str | None


@dataclass(frozen=True)
class EarlierCase:
    transaction_id: str
    opened_at: datetime
    status: str
    verdict: str | None
    closed_by: str | None
    score: float
    decision: str


@dataclass(frozen=True)
class ListChoice:
    name: str
    kind: str


QUEUE_SQL = f"""
SELECT c.transaction_id, c.opened_at, extract(epoch FROM now() - c.opened_at) AS age_seconds,
       c.claimed_by, CASE WHEN c.claimed_until > now() THEN c.claimed_until END AS claimed_until,
       t.amount_minor, t.customer_id, t.terminal_id, t.attributes, p.score, p.decision,
       p.decided_by, {PRIORITY_SQL} AS priority, count(*) OVER () AS total
FROM review_cases AS c
JOIN predictions AS p ON p.transaction_id = c.transaction_id
JOIN transactions AS t ON t.transaction_id = c.transaction_id
WHERE c.status = 'open'
  AND ($1::varchar IS NULL OR p.decision = $1)
  AND ($2::varchar IS NULL OR p.decided_by = $2
       OR p.rule_hits @> jsonb_build_array(jsonb_build_object('id', $2::text)))
  AND ($3::varchar IS NULL OR t.terminal_id = $3)
ORDER BY priority DESC, c.opened_at, c.transaction_id
LIMIT $4
"""


async def queue(f: QueueFilter, limit: int = 200) -> tuple[list[QueueRow], int]:
    """Open cases, highest priority first (claimed ones included, marked with their holder),
    and how many match in all."""
    rows = await fetch_many(QUEUE_SQL, f.decision, f.rule, f.terminal, limit)
    total = int(rows[0]["total"]) if rows else 0
    return [
        QueueRow(
            transaction_id=r["transaction_id"],
            opened_at=r["opened_at"],
            age_seconds=float(r["age_seconds"]),
            amount_minor=r["amount_minor"],
            customer_id=r["customer_id"],
            terminal_id=r["terminal_id"],
            score=r["score"],
            decision=r["decision"],
            decided_by=r["decided_by"],
            priority=float(r["priority"]),
            claimed_by=r["claimed_by"] if r["claimed_until"] is not None else None,
            claimed_until=r["claimed_until"],
            attributes=None if r["attributes"] is None else msgspec.json.decode(r["attributes"]),
        )
        for r in rows
    ], total


async def rules_in_queue() -> list[str]:
    """The rule ids that fired on open cases (the queue's rule filter offers these)."""
    rows = await fetch_many(
        "SELECT DISTINCT h ->> 'id' AS id FROM review_cases AS c "
        "JOIN predictions AS p ON p.transaction_id = c.transaction_id, "
        "jsonb_array_elements(coalesce(p.rule_hits, '[]'::jsonb)) AS h "
        "WHERE c.status = 'open' ORDER BY 1"
    )
    return [r["id"] for r in rows]


async def next_case(analyst: str) -> str | None:
    """The open case the analyst should work next: the highest priority one nobody else holds."""
    rows = await fetch_many(
        f"""SELECT c.transaction_id FROM review_cases AS c
        JOIN predictions AS p ON p.transaction_id = c.transaction_id
        JOIN transactions AS t ON t.transaction_id = c.transaction_id
        WHERE c.status = 'open'
          AND (c.claimed_by IS NULL OR c.claimed_by = $1 OR c.claimed_until <= now())
        ORDER BY {PRIORITY_SQL} DESC, c.opened_at, c.transaction_id LIMIT 1""",
        analyst,
    )
    return rows[0]["transaction_id"] if rows else None


async def state(transaction_id: str) -> CaseState | None:
    rows = await fetch_many(
        "SELECT transaction_id, status, opened_at, claimed_by, "
        "CASE WHEN claimed_until > now() THEN claimed_until END AS claimed_until, "
        "closed_by, closed_at, verdict, note FROM review_cases WHERE transaction_id = $1",
        transaction_id,
    )
    if not rows:
        return None
    r = rows[0]
    return CaseState(
        transaction_id=r["transaction_id"],
        status=r["status"],
        opened_at=r["opened_at"],
        claimed_by=r["claimed_by"] if r["claimed_until"] is not None else None,
        claimed_until=r["claimed_until"],
        closed_by=r["closed_by"],
        closed_at=r["closed_at"],
        verdict=r["verdict"],
        note=r["note"],
    )


async def claim(transaction_id: str, analyst: str, minutes: int) -> ClaimOutcome:
    """Take (or renew) a claim on an open case; `held` when another analyst's claim is live."""
    async with outage_guard(), pool().acquire() as connection, connection.transaction():
        until = await connection.fetchval(
            "UPDATE review_cases SET claimed_by = $2, "
            "claimed_until = now() + make_interval(mins => $3) "
            "WHERE transaction_id = $1 AND status = 'open' "
            "AND (claimed_by IS NULL OR claimed_by = $2 OR claimed_until <= now()) "
            "RETURNING claimed_until",
            transaction_id,
            analyst,
            minutes,
        )
        if until is not None:
            await audit.record(
                connection,
                analyst,
                "review.claimed",
                f"case:{transaction_id}",
                {"until": until.isoformat()},
            )
            return "claimed"
        status = await connection.fetchval(
            "SELECT status FROM review_cases WHERE transaction_id = $1", transaction_id
        )
    if status is None:
        return "unknown"
    return "closed" if status == "closed" else "held"


@dataclass(frozen=True)
class ListAddition:
    name: str
    value: str
    reason: str


async def close(
    transaction_id: str,
    analyst: str,
    verdict: Verdict,
    note: str,
    addition: ListAddition | None,
) -> bool:
    """Close the case with a verdict under the analyst's live claim: label (source `analyst`,
    labelled_by the analyst), optional list entry, audit row. False when the analyst holds no
    live claim on an open case (nothing changes). A bad list value raises ValueError and a
    missing list LookupError, and nothing changes either."""
    async with outage_guard(), pool().acquire() as connection, connection.transaction():
        closed = await connection.fetchval(
            "UPDATE review_cases SET status = 'closed', closed_by = $2, closed_at = now(), "
            "verdict = $3, note = $4, claimed_until = NULL "
            "WHERE transaction_id = $1 AND status = 'open' AND claimed_by = $2 "
            "AND claimed_until > now() RETURNING true",
            transaction_id,
            analyst,
            verdict,
            note or None,
        )
        if not closed:
            return False
        label = await upsert_label(
            transaction_id, verdict == "fraud", "analyst", analyst, connection=connection
        )
        details: dict[str, Any] = {"verdict": verdict, "label": label, "note": note}
        if addition is not None:
            await lists.add_on(
                connection,
                addition.name,
                [lists.NewEntry(value=addition.value, reason=addition.reason)],
                "review",
                analyst,
            )
            details["list"] = {"name": addition.name, "value": addition.value}
        await audit.record(connection, analyst, "review.verdict", f"case:{transaction_id}", details)
        return True


NEIGHBOURS_SQL = """
SELECT t.transaction_id, t.ts, t.amount_minor, t.customer_id, t.terminal_id, p.score,
       p.decision, l.is_fraud, l.source
FROM transactions AS t
LEFT JOIN predictions AS p ON p.transaction_id = t.transaction_id
LEFT JOIN labels AS l ON l.transaction_id = t.transaction_id
WHERE t.{column} = $1 AND t.transaction_id <> $2
ORDER BY t.ts DESC LIMIT $3
"""


async def neighbours(
    column: Literal["customer_id", "terminal_id"], key: str, transaction_id: str, limit: int = 10
) -> list[Neighbour]:
    """The latest transactions of a customer or terminal, besides this one."""
    rows = await fetch_many(NEIGHBOURS_SQL.format(column=column), key, transaction_id, limit)
    return [
        Neighbour(
            transaction_id=r["transaction_id"],
            timestamp=r["ts"],
            amount_minor=r["amount_minor"],
            customer_id=r["customer_id"],
            terminal_id=r["terminal_id"],
            score=r["score"],
            decision=r["decision"],
            is_fraud=r["is_fraud"],
            label_source=r["source"],
        )
        for r in rows
    ]


async def earlier_cases(
    customer_id: str, transaction_id: str, limit: int = 20
) -> list[EarlierCase]:
    rows = await fetch_many(
        "SELECT c.transaction_id, c.opened_at, c.status, c.verdict, c.closed_by, p.score, "
        "p.decision FROM review_cases AS c "
        "JOIN transactions AS t ON t.transaction_id = c.transaction_id "
        "JOIN predictions AS p ON p.transaction_id = c.transaction_id "
        "WHERE t.customer_id = $1 AND c.transaction_id <> $2 "
        "ORDER BY c.opened_at DESC LIMIT $3",
        customer_id,
        transaction_id,
        limit,
    )
    return [
        EarlierCase(
            r["transaction_id"],
            r["opened_at"],
            r["status"],
            r["verdict"],
            r["closed_by"],
            r["score"],
            r["decision"],
        )
        for r in rows
    ]


async def list_choices() -> list[ListChoice]:
    """Lists a verdict may add the customer, device or terminal to."""
    rows = await fetch_many(
        "SELECT name, kind FROM lists WHERE kind IN ('customer', 'device', 'terminal') "
        "ORDER BY name"
    )
    return [ListChoice(r["name"], r["kind"]) for r in rows]


@dataclass(frozen=True)
class ReviewStats:
    """The queue's state for the worker's gauges (fraudsvc.jobs.worker_metrics)."""

    open_cases: int
    oldest_open_seconds: float
    closed_last_hour: dict[str, int]
    """Cases closed in the last hour, by verdict (fraud, genuine)."""
    confirmed_share_7d: float
    """Share of the cases closed in the last 7 days confirmed as fraud (0 when none)."""


async def review_stats() -> ReviewStats:
    """One pass over the open cases and the last week's closed ones."""
    rows = await fetch_many(
        "SELECT count(*) FILTER (WHERE status = 'open') AS open_cases, "
        "coalesce(extract(epoch FROM now() - min(opened_at) FILTER (WHERE status = 'open')), 0) "
        "AS oldest, "
        "count(*) FILTER (WHERE verdict = 'fraud' AND closed_at > now() - interval '1 hour') "
        "AS fraud_hour, "
        "count(*) FILTER (WHERE verdict = 'genuine' AND closed_at > now() - interval '1 hour') "
        "AS genuine_hour, "
        "coalesce(avg((verdict = 'fraud')::int) FILTER (WHERE status = 'closed'), 0) AS share "
        "FROM review_cases "
        "WHERE status = 'open' OR (status = 'closed' AND closed_at > now() - interval '7 days')"
    )
    row = rows[0]
    return ReviewStats(
        open_cases=int(row["open_cases"]),
        oldest_open_seconds=float(row["oldest"]),
        closed_last_hour={"fraud": int(row["fraud_hour"]), "genuine": int(row["genuine_hour"])},
        confirmed_share_7d=float(row["share"]),
    )
