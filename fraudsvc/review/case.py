"""The case page's data: the transaction with every field and attribute, its prediction and
rule hits, the two explanations as charts (LightGBM's exact contributions, LIME's local fit),
the customer's and terminal's recent transactions, and the customer's earlier cases."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fraudsvc.db import cases, queries
from fraudsvc.db import explanations as explanation_rows
from fraudsvc.db.cases import CaseState, EarlierCase, ListChoice, Neighbour
from fraudsvc.db.explanations import ExplanationRecord
from fraudsvc.db.records import StoredTransaction
from fraudsvc.review.charts import BarChart, bar_chart
from fraudsvc.review.queue import amount_text
from fraudsvc.transaction import OPTIONAL_FIELDS

POOR_FIT_R2 = 0.3
"""Below this local R², LIME's straight line explains little of the model around the payment."""
TOP_REASONS = 10


@dataclass(frozen=True)
class Field:
    name: str
    value: str


@dataclass(frozen=True)
class Hit:
    id: str
    action: str
    mode: str
    status: str
    values: list[Field]
    error: str | None


@dataclass(frozen=True)
class Lime:
    status: str
    chart: BarChart | None
    local_fit_r2: float | None
    stability: float | None
    poor_fit: bool
    target: str | None
    error: str | None
    held_missing: list[str]


@dataclass(frozen=True)
class CasePage:
    transaction_id: str
    fields: list[Field]
    attributes: list[Field]
    amount: str
    customer_id: str
    terminal_id: str
    device_id: str | None
    score: float
    decision: str
    model_decision: str
    decided_by: str
    threshold_review: float
    threshold_block: float
    model: str
    ruleset_version: int | None
    hits: list[Hit]
    reasons: BarChart | None
    lime: Lime
    label: str | None
    state: CaseState
    customer_recent: list[Neighbour]
    terminal_recent: list[Neighbour]
    earlier: list[EarlierCase]
    lists: list[ListChoice]


def text(value: Any) -> str:
    """A value as the page shows it (the template escapes it)."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _hits(raw: list[dict[str, Any]] | None) -> list[Hit]:
    return [
        Hit(
            id=str(h.get("id")),
            action=str(h.get("action")),
            mode=str(h.get("mode")),
            status=str(h.get("status")),
            values=[Field(k, text(v)) for k, v in (h.get("values") or {}).items()],
            error=h.get("error"),
        )
        for h in raw or []
    ]


def _reasons(raw: list[dict[str, Any]] | None) -> BarChart | None:
    if not raw:
        return None
    top = sorted(raw, key=lambda r: -abs(float(r["contribution"])))[:TOP_REASONS]
    return bar_chart(
        [(f"{r['feature']} = {text(r['value'])}", float(r["contribution"])) for r in top]
    )


def _lime(record: ExplanationRecord | None) -> Lime:
    if record is None:
        return Lime("not requested", None, None, None, False, None, None, [])
    chart = None
    if record.status == "done" and record.weights:
        top = sorted(record.weights, key=lambda w: -abs(float(w["weight"])))[:TOP_REASONS]
        chart = bar_chart([(str(w["condition"]), float(w["weight"])) for w in top])
    r2 = record.local_fit_r2
    return Lime(
        status=record.status,
        chart=chart,
        local_fit_r2=r2,
        stability=record.stability,
        poor_fit=r2 is not None and r2 < POOR_FIT_R2,
        target=record.target,
        error=record.error,
        held_missing=list(record.held_missing or []),
    )


async def case_page(transaction_id: str) -> CasePage | None:
    """None when the transaction has no review case."""
    state = await cases.state(transaction_id)
    if state is None:
        return None
    stored = await queries.fetch_transaction(transaction_id)
    if stored is None or stored.prediction is None:
        return None
    return await _page(stored, state)


async def _page(stored: StoredTransaction, state: CaseState) -> CasePage:
    tx = stored.body
    p = stored.prediction
    assert p is not None
    fields = [
        Field("transaction_id", tx.transaction_id),
        Field("timestamp", tx.timestamp.isoformat()),
        Field("received_at", stored.received_at.isoformat()),
        Field("customer_id", tx.customer_id),
        Field("terminal_id", tx.terminal_id),
        Field("amount", amount_text(tx.amount_minor)),
        *[Field(name, text(tx.value(name))) for name in OPTIONAL_FIELDS if name != "attributes"],
    ]
    label = None
    if stored.label is not None:
        who = f" by {stored.label.labelled_by}" if stored.label.labelled_by else ""
        verdict = "fraud" if stored.label.is_fraud else "genuine"
        label = f"{verdict} ({stored.label.source}{who})"
    return CasePage(
        transaction_id=tx.transaction_id,
        fields=fields,
        attributes=[Field(k, text(v)) for k, v in sorted((tx.attributes or {}).items())],
        amount=amount_text(tx.amount_minor),
        customer_id=tx.customer_id,
        terminal_id=tx.terminal_id,
        device_id=tx.device_id,
        score=p.score,
        decision=p.decision,
        model_decision=p.model_decision,
        decided_by=p.decided_by,
        threshold_review=p.threshold_review,
        threshold_block=p.threshold_block,
        model=f"{p.model_name} v{p.model_version}",
        ruleset_version=p.ruleset_version,
        hits=_hits(p.rule_hits),
        reasons=_reasons(p.reasons),
        lime=_lime(await explanation_rows.read(tx.transaction_id)),
        label=label,
        state=state,
        customer_recent=await cases.neighbours("customer_id", tx.customer_id, tx.transaction_id),
        terminal_recent=await cases.neighbours("terminal_id", tx.terminal_id, tx.transaction_id),
        earlier=await cases.earlier_cases(tx.customer_id, tx.transaction_id),
        lists=await cases.list_choices(),
    )
