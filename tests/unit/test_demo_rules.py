"""The demo's analyst: rules that compile against the default declaration, and a list built
only from chargebacks that had arrived by the cut."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import polars as pl

from fraudsvc import demo_rules
from fraudsvc.features import DECLARATION
from fraudsvc.rules.ruleset import RuleSpec, compile_ruleset
from fraudsvc.rules.schema import transaction_schema

CUT = datetime(2026, 4, 27, tzinfo=UTC)


def test_the_demo_rules_compile_against_the_default_declaration() -> None:
    specs = [msgspec.convert(r, RuleSpec) for r in demo_rules.RULES]
    ruleset = compile_ruleset(
        1, specs, transaction_schema(DECLARATION.names), {demo_rules.LIST_NAME: "terminal"}
    )
    assert [c.spec.id for c in ruleset.rules] == [r["id"] for r in demo_rules.RULES]


def frauds(terminal: str, *days_before_cut: float) -> list[dict[str, object]]:
    return [
        {"terminal_id": terminal, "timestamp": CUT - timedelta(days=d), "is_fraud": 1}
        for d in days_before_cut
    ]


def test_the_list_holds_terminals_with_two_chargebacks_known_by_the_cut() -> None:
    rows = [
        *frauds("T_two_known", 8, 10),  # both charged back by the cut (7-day delay)
        *frauds("T_one_known", 9, 3),  # the second's chargeback has not arrived yet
        *frauds("T_too_old", 20, 21),  # outside the week before the delay
        {"terminal_id": "T_genuine", "timestamp": CUT - timedelta(days=9), "is_fraud": 0},
        {"terminal_id": "T_genuine", "timestamp": CUT - timedelta(days=10), "is_fraud": 0},
    ]
    entries = demo_rules.compromised_terminals(pl.DataFrame(rows), CUT)
    assert [e["value"] for e in entries] == ["T_two_known"]
    assert entries[0]["reason"] == "2 chargebacks in a week"
    assert datetime.fromisoformat(entries[0]["expires_at"]) > datetime.now(UTC)
