"""The queue page's data: open cases in priority order (see `fraudsvc.db.cases`), the filters
the analyst chose, and each row as the page shows it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fraudsvc.db import cases
from fraudsvc.db.cases import QueueFilter
from fraudsvc.transaction import ID_PATTERN, minor_to_amount

DECISIONS = ("review", "block")
_ID = re.compile(ID_PATTERN)


def amount_text(minor: int) -> str:
    return f"{minor_to_amount(minor):,.2f}"


def age_text(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 1:
        return "just now"
    if minutes < 60:
        return f"{minutes} min"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} h {minutes % 60:02d} min"
    return f"{hours // 24} days"


def details_text(attributes: dict[str, Any] | None, limit: int = 120) -> str:
    """The payment's attributes in one short line (the template escapes it)."""
    if not attributes:
        return ""
    line = ", ".join(f"{k}={v}" for k, v in sorted(attributes.items()))
    return line if len(line) <= limit else line[: limit - 1] + "…"


@dataclass(frozen=True)
class Row:
    transaction_id: str
    amount: str
    customer_id: str
    terminal_id: str
    score: str
    decision: str
    decided_by: str
    age: str
    priority: str
    claimed_by: str | None
    details: str


@dataclass(frozen=True)
class QueuePage:
    rows: list[Row]
    total: int
    filters: QueueFilter
    decisions: tuple[str, ...]
    rules: list[str]


def filters_from(decision: str | None, rule: str | None, terminal: str | None) -> QueueFilter:
    """Unknown or malformed filter values are dropped (a filter is a choice, not free text)."""
    return QueueFilter(
        decision=decision if decision in DECISIONS else None,
        rule=rule if rule and _ID.match(rule) else None,
        terminal=terminal if terminal and _ID.match(terminal) else None,
    )


async def queue_page(filters: QueueFilter) -> QueuePage:
    rows, total = await cases.queue(filters)
    return QueuePage(
        total=total,
        rows=[
            Row(
                transaction_id=r.transaction_id,
                amount=amount_text(r.amount_minor),
                customer_id=r.customer_id,
                terminal_id=r.terminal_id,
                score=f"{r.score:.3f}",
                decision=r.decision,
                decided_by=r.decided_by,
                age=age_text(r.age_seconds),
                priority=f"{r.priority:.3f}",
                claimed_by=r.claimed_by,
                details=details_text(r.attributes),
            )
            for r in rows
        ],
        filters=filters,
        decisions=DECISIONS,
        rules=await cases.rules_in_queue(),
    )
