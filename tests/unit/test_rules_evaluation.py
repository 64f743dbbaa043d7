"""Evaluation: missing values (three-valued logic, a rule fires only on exactly true), run-time
failures as error outcomes (never exceptions), and the values an outcome reports."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import pytest

from fraudsvc.rules.lists import ListEntry, build_lists
from tests.rules_support import BASE, LIST_KINDS, LISTS, NOW, compiled, evaluate

# `flagged` is an optional bool: ... removes it (missing), None is missing too
T, F, M = True, False, None
KLEENE_AND = {(T, T): T, (T, F): F, (T, M): M, (F, T): F, (F, F): F, (F, M): F, (M, T): M}
KLEENE_AND |= {(M, F): F, (M, M): M}
KLEENE_OR = {(T, T): T, (T, F): T, (T, M): T, (F, T): T, (F, F): F, (F, M): M, (M, T): T}
KLEENE_OR |= {(M, F): M, (M, M): M}


def bool_term(value: bool | None, name: str) -> tuple[str, dict[str, Any]]:
    """An optional-bool attribute holding the value (absent when missing)."""
    return f"attributes.{name}", ({} if value is None else {name: value})


@pytest.mark.parametrize(("pair", "expected"), KLEENE_AND.items())
def test_and_is_kleene(pair: tuple[bool | None, bool | None], expected: bool | None) -> None:
    (left, lattrs), (right, rattrs) = bool_term(pair[0], "a"), bool_term(pair[1], "b")
    outcome = evaluate(f"{left} and {right}", attributes={**lattrs, **rattrs})
    assert outcome.value is expected
    assert outcome.fired is (expected is True)


@pytest.mark.parametrize(("pair", "expected"), KLEENE_OR.items())
def test_or_is_kleene(pair: tuple[bool | None, bool | None], expected: bool | None) -> None:
    (left, lattrs), (right, rattrs) = bool_term(pair[0], "a"), bool_term(pair[1], "b")
    outcome = evaluate(f"{left} or {right}", attributes={**lattrs, **rattrs})
    assert outcome.value is expected


@pytest.mark.parametrize(("flagged", "expected"), [(True, False), (False, True), (..., None)])
def test_not_of_missing_is_missing(flagged: Any, expected: bool | None) -> None:
    assert evaluate("not flagged", flagged=flagged).value is expected


@pytest.mark.parametrize(
    "text",
    [
        "count > 1",
        "count == count",
        "count + 1 > 0",
        "-count < 0",
        "count in (1, 2)",
        "count not in (1, 2)",
        'channel == "pos"',
        'channel != "pos"',
        'not (channel == "pos")',
        "channel in @words",
        "channel not in @words",
        "abs(count) >= 0",
        "min(amount, count) > 0",
        'lower(channel) == "pos"',
        'startswith(channel, "p")',
        "1 < count < 5",
        "amount > 1 and count > 1",
        "flagged",
        "flagged == True",
        "attributes.tier == 'gold'",
    ],
)
def test_anything_computed_from_a_missing_value_is_missing_and_never_fires(text: str) -> None:
    outcome = evaluate(text)
    assert outcome.status == "not_fired"
    assert outcome.value is None
    # None, NaN and an absent attributes map are missing too
    assert evaluate(text, count=None, channel=None, flagged=None).value is None
    assert evaluate(text, count=math.nan, attributes={"tier": None}).value is None


def test_a_false_term_decides_even_when_another_is_missing() -> None:
    assert evaluate("count > 1 and amount > 100").value is False
    assert evaluate("amount > 100 and count > 1").value is False
    assert evaluate("count > 1 or amount > 1").value is True
    assert evaluate("1 < count < 5 or verified").fired
    assert evaluate("count < 50 < amount").value is False  # 50 < 10 is false, whatever count


@pytest.mark.parametrize(
    ("text", "context", "expected"),
    [
        ("present(count)", {"count": 0}, True),
        ("present(count)", {}, False),
        ("missing(count)", {}, True),
        ("missing(count)", {"count": math.nan}, True),
        ("missing(channel) or channel != 'FR'", {}, True),
        ("missing(attributes.x)", {"attributes": {"x": None}}, True),
        ("present(attributes.x)", {"attributes": {"x": False}}, True),
        ("missing(count + 1)", {}, True),
        ("not missing(count)", {}, False),
    ],
)
def test_present_and_missing_are_never_missing(
    text: str, context: dict[str, Any], expected: bool
) -> None:
    assert evaluate(text, **context).value is expected


@pytest.mark.parametrize(
    ("text", "context", "message"),
    [
        ("amount / 0 > 1", {}, "division by zero in `amount / 0` (column 1)"),
        ("amount % (score - 0.5) > 1", {}, "in `amount % (score - 0.5)` (column 1)"),
        ("verified and amount / count > 1", {"count": 0}, "division by zero"),
        ("ratio - ratio > 0", {"ratio": math.inf}, "is not a number (NaN)"),
        ("amount > 1", {"amount": ...}, "amount has no value, but the schema says"),
        ("amount > 1", {"amount": None}, "amount has no value"),
        ("amount > 1", {"amount": math.nan}, "amount has no value"),
        ("customer_id in @blocked_customers", {"customer_id": ...}, "customer_id has no value"),
        ("present(verified)", {"verified": ...}, "verified has no value"),
        # a context that breaks its schema is reported, not raised
        ("amount > 1", {"amount": "12"}, "TypeError"),
        ("count + 1 > 1", {"count": "1"}, "TypeError"),
        ("attributes.x > 1", {"attributes": ["x"]}, "AttributeError"),
    ],
)
def test_run_time_failures_are_error_outcomes_with_the_message(
    text: str, context: dict[str, Any], message: str
) -> None:
    outcome = evaluate(text, **context)
    assert outcome.status == "error"
    assert outcome.value is None
    assert not outcome.fired
    assert outcome.error is not None
    assert message in outcome.error


def test_and_or_stop_at_the_deciding_operand_so_later_failures_do_not_happen() -> None:
    assert evaluate("not verified and amount / 0 > 1").status == "not_fired"
    assert evaluate("verified or amount / 0 > 1").status == "fired"
    assert evaluate("amount / 0 > 1 or verified").status == "error"
    assert evaluate("1 > amount > amount / 0").status == "not_fired"  # the chain stops at false


def test_both_operands_are_evaluated_so_a_failure_beside_a_missing_value_is_reported() -> None:
    assert evaluate("count > amount / 0").status == "error"
    assert evaluate("attributes.x > count", attributes={"x": "a"}).status == "error"


def test_an_unknown_list_at_run_time_is_an_error_outcome() -> None:
    rule = compiled("customer_id in @blocked_customers")
    without = build_lists({"words": "string"}, [])
    outcome = rule.evaluate({"customer_id": "C1"}, without.at(NOW))
    assert outcome.status == "error"
    assert outcome.error is not None
    assert "unknown list @blocked_customers" in outcome.error


def test_a_hit_reports_the_values_and_list_look_ups_that_made_it() -> None:
    outcome = evaluate(
        "(customer_id in @blocked_customers or ip in @bad_networks) and amount > 5 "
        "and attributes.tier != 'gold' and missing(count)",
        customer_id="C1",
        ip="10.1.2.3",
        attributes={"tier": "silver", "other": 1},
    )
    assert outcome.fired
    assert dict(outcome.values) == {
        "amount": 10.0,
        "count": None,
        "customer_id": "C1",
        "ip": "10.1.2.3",
        "attributes.tier": "silver",
    }
    assert [(m.list, m.value, m.member) for m in outcome.memberships] == [
        ("blocked_customers", "C1", False),
        ("bad_networks", "10.1.2.3", True),
    ]


def test_an_error_reports_the_values_too_and_a_miss_reports_nothing() -> None:
    failed = evaluate("amount / count > 1", count=0)
    assert failed.values == {"amount": 10.0, "count": 0}
    missed = evaluate("customer_id in @blocked_customers")
    assert missed.status == "not_fired"
    assert missed.value is False
    assert not missed.values
    assert not missed.memberships


def test_explain_reports_the_values_of_a_rule_that_did_not_fire() -> None:
    outcome = compiled("customer_id in @blocked_customers and count > 1").evaluate(
        {**BASE, "customer_id": "C666"}, LISTS.at(NOW), explain=True
    )
    assert outcome.status == "not_fired"
    assert outcome.value is None
    assert outcome.values == {"count": None, "customer_id": "C666"}
    assert [m.member for m in outcome.memberships] == [True]


def test_expired_list_entries_never_match() -> None:
    snapshot = build_lists(
        LIST_KINDS,
        [("blocked_customers", ListEntry("C9", "short ban", expires_at=NOW + timedelta(hours=1)))],
    )
    rule = compiled("customer_id in @blocked_customers")
    context = {"customer_id": "C9"}
    assert rule.evaluate(context, snapshot.at(NOW)).fired
    assert not rule.evaluate(context, snapshot.at(NOW + timedelta(hours=1))).fired
    assert rule.evaluate(context, LISTS.at(NOW)).value is False


def test_a_compiled_rule_is_reusable_and_keeps_no_state_between_transactions() -> None:
    rule = compiled("amount > 100 and customer_id in @blocked_customers")
    view = LISTS.at(NOW)
    hits = [
        rule.evaluate({"amount": a, "customer_id": c, "verified": True}, view).status
        for a, c in [(500, "C666"), (50, "C666"), (500, "C1"), (500, "C777")]
    ]
    assert hits == ["fired", "not_fired", "not_fired", "fired"]
