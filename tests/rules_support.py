"""A small schema, list registry and real in-memory lists shared by the rule tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from fraudsvc.rules.errors import RuleError
from fraudsvc.rules.language import CompiledRule, Outcome, compile_rule
from fraudsvc.rules.lists import ListEntry, ListSnapshot, build_lists
from fraudsvc.rules.schema import Field, ListKind, Schema

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
SCHEMA = Schema(
    {
        "amount": Field("number"),
        "score": Field("number"),
        "count": Field("number", optional=True),
        "ratio": Field("number", optional=True),
        "channel": Field("string", optional=True),
        "customer_id": Field("string", kind="customer"),
        "card_country": Field("string", optional=True, kind="country"),
        "ip": Field("string", optional=True, kind="ip"),
        "verified": Field("bool"),
        "flagged": Field("bool", optional=True),
    }
)
LIST_KINDS: dict[str, ListKind] = {
    "blocked_customers": "customer",
    "bad_networks": "ip",
    "risky_countries": "country",
    "words": "string",
}
LISTS: ListSnapshot = build_lists(
    LIST_KINDS,
    [
        ("blocked_customers", ListEntry("C666", "chargebacks", "analyst", "ana")),
        ("blocked_customers", ListEntry("C777", "chargebacks", "analyst", "ana")),
        ("bad_networks", ListEntry("10.0.0.0/8", "private range", "feed", "bot")),
        ("bad_networks", ListEntry("2001:db8::/32", "documentation range", "feed", "bot")),
        ("bad_networks", ListEntry("192.0.2.7", "seen in an attack", "analyst", "ana")),
        ("risky_countries", ListEntry("NG", "policy", "analyst", "ana")),
        ("words", ListEntry("pos", "test", "analyst", "ana")),
        (
            "words",
            ListEntry("@blocked_customers", "a string that looks like a reference", "t", "t"),
        ),
    ],
)
BASE: dict[str, Any] = {"amount": 10.0, "score": 0.5, "customer_id": "C1", "verified": True}


def compiled(text: str) -> CompiledRule:
    return compile_rule(text, SCHEMA, LIST_KINDS)


def evaluate(text: str, **context: Any) -> Outcome:
    """Evaluate on BASE updated with `context`; a value of `...` removes the name."""
    ctx = {**BASE, **context}
    ctx = {k: v for k, v in ctx.items() if v is not ...}
    return compiled(text).evaluate(ctx, LISTS.at(NOW))


def refused(text: str) -> RuleError:
    with pytest.raises(RuleError) as info:
        compiled(text)
    return info.value
