"""The final decision from the model's and the live rules' (fraudsvc.decision.combine), and a
ruleset evaluated on one transaction (fraudsvc.rules.ruleset)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fraudsvc.decision import combine
from fraudsvc.features import DECLARATION
from fraudsvc.rules.lists import ListEntry, build_lists
from fraudsvc.rules.ruleset import (
    Hit,
    RulesetRefused,
    RuleSpec,
    compile_ruleset,
    context_of,
    evaluate,
)
from fraudsvc.rules.schema import transaction_schema
from fraudsvc.transaction import Transaction


def hit(rule: str, action: str, mode: str = "live", status: str = "fired") -> Hit:
    return Hit(id=rule, action=action, mode=mode, status=status, values={})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("model", "hits", "expected"),
    [
        ("allow", [], ("allow", "model")),
        ("block", [], ("block", "model")),
        # a block rule blocks what the model allows, and beats an allow rule
        ("allow", [hit("stolen", "block")], ("block", "stolen")),
        ("allow", [hit("vip", "allow"), hit("stolen", "block")], ("block", "stolen")),
        # an allow rule overrides the model's review and block
        ("block", [hit("vip", "allow")], ("allow", "vip")),
        ("review", [hit("vip", "allow"), hit("watch", "review")], ("allow", "vip")),
        # review rules escalate, never soften a block
        ("allow", [hit("watch", "review")], ("review", "watch")),
        ("block", [hit("watch", "review")], ("block", "model")),
        # shadow rules and failed rules never decide
        ("allow", [hit("stolen", "block", mode="shadow")], ("allow", "model")),
        ("allow", [hit("broken", "block", status="error")], ("allow", "model")),
        # of two rules with one action, the first in the ruleset's order names the decision
        ("allow", [hit("first", "block"), hit("second", "block")], ("block", "first")),
    ],
)
def test_the_precedence_of_rules_over_the_model(
    model: str, hits: list[Hit], expected: tuple[str, str]
) -> None:
    assert combine(model, hits) == expected  # type: ignore[arg-type]


def test_a_ruleset_reports_every_hit_with_the_values_that_fired_it() -> None:
    specs = [
        RuleSpec("big_amount", "amount > 5000", "block"),
        RuleSpec("blocked_device", "device_id in @blocked_devices", "block"),
        RuleSpec("abroad", "card_country != merchant_country", "review", "shadow"),
        RuleSpec("ratio", "amount / (customer_nb_tx_1h - 1) > 1", "review"),
    ]
    kinds = {"blocked_devices": "device"}
    lists = build_lists(kinds, [("blocked_devices", ListEntry("D-9", reason="mule"))])  # type: ignore[arg-type]
    ruleset = compile_ruleset(3, specs, transaction_schema(DECLARATION.names), kinds)  # type: ignore[arg-type]
    tx = Transaction(
        "t1", datetime(2026, 3, 2, tzinfo=UTC), "C1", "T1", 600_000, device_id="D-9",
        card_country="DE", merchant_country="FR",
    )  # fmt: skip
    vector = [float("nan")] * len(DECLARATION.names)
    vector[DECLARATION.names.index("customer_nb_tx_1h")] = 1.0  # division by zero below
    context = context_of(tx, DECLARATION.names, vector, 0.42, "allow")
    hits = {h.id: h for h in evaluate(ruleset, context, lists.at(datetime.now(UTC)))}
    assert hits["big_amount"].values == {"amount": 6000.0}
    assert hits["blocked_device"].values == {"device_id": "D-9", "@blocked_devices[D-9]": True}
    assert hits["abroad"].mode == "shadow"
    assert hits["ratio"].status == "error"
    assert "division" in (hits["ratio"].error or "").lower() or "zero" in (
        hits["ratio"].error or ""
    )
    assert combine("allow", list(hits.values())) == ("block", "big_amount")


def test_a_ruleset_names_every_rule_it_refuses() -> None:
    specs = [
        RuleSpec("ok", "amount > 1", "block"),
        RuleSpec("call", "open('x') == 1", "block"),
        RuleSpec("attr", "amount.real > 1", "block"),
        RuleSpec("ok", "amount > 2", "review"),
        RuleSpec("list", "customer_id in @nowhere", "block"),
    ]
    with pytest.raises(RulesetRefused) as refused:
        compile_ruleset(1, specs, transaction_schema(DECLARATION.names), {})
    named = [p.rule for p in refused.value.problems]
    assert sorted(named) == ["attr", "call", "list", "ok"]  # the second "ok" is a duplicate
