"""The rule grammar: every allowed construct compiles and computes what Python would, and every
other construct is refused at submission with a message and the column where it starts."""

from __future__ import annotations

from typing import Any

import pytest

from fraudsvc.rules.parsing import MAX_LENGTH
from tests.rules_support import evaluate, refused

ALLOWED: list[tuple[str, dict[str, Any], bool]] = [
    # literals of every type, both quote styles
    ("amount == 10", {}, True),
    ("amount == 10.0 and score == 0.5", {}, True),
    ('channel == "pos"', {"channel": "pos"}, True),
    ("channel == 'pos'", {"channel": "pos"}, True),
    ("verified == True", {}, True),
    ("verified != False", {}, True),
    ("verified", {}, True),
    ("True", {}, True),
    # every comparison, literal on either side, chains
    ("amount != 11", {}, True),
    ("amount < 11 and amount <= 10 and amount > 9 and amount >= 10", {}, True),
    ("11 > amount", {}, True),
    # a literal on the left, at the boundary, for every operator
    ("10 < amount", {}, False),
    ("10 <= amount", {}, True),
    ("10 > amount", {}, False),
    ("10 >= amount", {}, True),
    ("10 == amount", {}, True),
    ("10 != amount", {}, False),
    ("10 < count", {"count": 10}, False),
    ("10 <= count", {"count": 10}, True),
    ("1 < amount <= 10", {}, True),
    ("1 < amount < 5", {}, False),
    ("0 < score < amount < 100", {}, True),
    ('channel < "q"', {"channel": "pos"}, True),
    # and / or / not, precedence as in Python
    ("not verified or amount > 5", {}, True),
    ("verified and not amount > 5", {}, False),
    ("amount > 100 or amount > 5 and verified", {}, True),
    ("(amount > 100 or amount > 5) and not verified", {}, False),
    # arithmetic and its precedence
    ("amount + 2 * 3 == 16", {}, True),
    ("(amount + 2) * 3 == 36", {}, True),
    ("amount - 4 / 2 == 8", {}, True),
    ("amount % 3 == 1", {}, True),
    ("-amount == -10", {}, True),
    ("-amount * 2 < -19", {}, True),
    ("amount / 4 == 2.5", {}, True),
    # membership in literal lists, tuples and sets, and in named lists
    ("amount in (1, 10, 100)", {}, True),
    ("amount in [-1, -10]", {}, False),
    ("-amount in [-1, -10]", {}, True),
    ('channel in {"pos", "atm"}', {"channel": "atm"}, True),
    ('channel not in ("pos", "atm")', {"channel": "ecommerce"}, True),
    ("customer_id in @blocked_customers", {"customer_id": "C666"}, True),
    ("customer_id not in @blocked_customers", {"customer_id": "C666"}, False),
    ("(customer_id in @blocked_customers) == True", {"customer_id": "C777"}, True),
    ("customer_id in (@blocked_customers)", {"customer_id": "C777"}, True),
    ("ip in @bad_networks", {"ip": "10.20.30.40"}, True),
    ("card_country in @risky_countries", {"card_country": "ng"}, True),
    ("channel in @words", {"channel": "pos"}, True),
    # attributes
    ("attributes.tier == 'gold'", {"attributes": {"tier": "gold"}}, True),
    ("attributes.account_age_days < 3", {"attributes": {"account_age_days": 1}}, True),
    ("attributes.three_ds", {"attributes": {"three_ds": True}}, True),
    ("attributes.a1_b == attributes.c", {"attributes": {"a1_b": 2, "c": 2.0}}, True),
    # every function
    ("abs(-amount) == 10", {}, True),
    ("min(amount, 3, score) == 0.5", {}, True),
    ("max(amount, 30) == 30", {}, True),
    ('lower(channel) == "pos"', {"channel": "PoS"}, True),
    ('upper(channel) == "POS"', {"channel": "PoS"}, True),
    ('startswith(customer_id, "C6")', {"customer_id": "C666"}, True),
    ('endswith(customer_id, "7")', {"customer_id": "C666"}, False),
    (
        'contains(attributes.email, "@mailinator")',
        {"attributes": {"email": "a@mailinator.com"}},
        True,
    ),
    ("present(channel)", {"channel": "pos"}, True),
    ("missing(channel)", {}, True),
    ("missing(attributes.x)", {}, True),
    # layout: lines inside brackets, comments
    ("(amount > 5  # big enough\n and verified)", {}, True),
    ("  \t amount > 5\n\n", {}, True),  # surrounding whitespace is dropped
    # '@' inside a string literal stays a string
    ('channel == "@blocked_customers"', {"channel": "@blocked_customers"}, True),
    ("channel == 'a @b' or channel == \"@\"", {"channel": "@"}, True),
    ('channel in @words and "@words" == channel', {"channel": "@words"}, False),
    ("channel in @words", {"channel": "@blocked_customers"}, True),
]


@pytest.mark.parametrize(("text", "context", "fires"), ALLOWED)
def test_allowed_constructs_compute_what_python_computes(
    text: str, context: dict[str, Any], fires: bool
) -> None:
    outcome = evaluate(text, **context)
    assert outcome.status == ("fired" if fires else "not_fired"), outcome


REFUSED: list[tuple[str, str, int]] = [
    ("__import__('os')", "names cannot start with '_'", 1),
    ("().__class__", "names cannot start with '_'", 4),
    ("attributes.__class__", "names cannot start with '_'", 12),
    ("amount.__class__.__bases__", "names cannot start with '_'", 8),
    ("amount.real > 1", "only attributes.<key> may use '.'", 1),
    ("attributes.a.b == 1", "only attributes.<key> may use '.'", 1),
    ("attributes.Tier == 1", "attribute keys match", 1),
    ("attributes == 1", "attributes needs a key", 1),
    ("eval('1') == 1", "'eval' cannot be called", 1),
    ("open('/etc/passwd') == 1", "'open' cannot be called", 1),
    ("getattr(amount, 'real') > 1", "'getattr' cannot be called", 1),
    ("print(amount)", "'print' cannot be called", 1),
    ("''.join(channel) == 'x'", "cannot be called", 1),
    ("lower.x == 1", "only attributes.<key> may use '.'", 1),
    ("lower == 1", "lower is a function", 1),
    ("(lambda: True)()", "cannot be called", 1),
    ("lambda: True", "lambda is not allowed", 1),
    ("[c for c in channel] == 1", "comprehensions are not allowed", 1),
    ("{c for c in channel} == 1", "comprehensions are not allowed", 1),
    ("{c: 1 for c in channel} == 1", "comprehensions are not allowed", 1),
    ("(c for c in channel)", "generator expressions are not allowed", 1),
    ("channel[0] == 'p'", "subscripts", 1),
    ("channel[1:] == 'p'", "subscripts", 1),
    ('f"{channel}" == "pos"', "f-strings are not allowed", 1),
    ("(x := 1) == 1", "assignment expressions", 2),
    ("min(*amount, 1) > 1", "* unpacking is not allowed", 5),
    ("abs(x=1) > 1", "keyword arguments are not allowed", 5),
    ("amount is None", "`is` is not allowed", 1),
    ("amount is not 1", "`is` is not allowed", 1),
    ("verified if amount > 1 else False", "conditional expressions", 1),
    ("{'a': 1} == 1", "dictionaries are not allowed", 1),
    ("amount ** 2 > 1", "the operator ** is not allowed", 1),
    ("amount // 2 > 1", "the operator // is not allowed", 1),
    ("amount & 1 == 1", "the operator & is not allowed", 1),
    ("amount << 1 == 1", "the operator << is not allowed", 1),
    ("+amount > 1", "unary + is not allowed", 1),
    ("~amount > 1", "unary ~ is not allowed", 1),
    ("None == amount", "None is not allowed", 1),
    ("b'x' == channel", "bytes literals are not allowed", 1),
    ("1j == amount", "complex literals are not allowed", 1),
    ("... == amount", "ellipsis literals are not allowed", 1),
    ("@blocked_customers", "can only be the right operand of in / not in", 1),
    ("customer_id == @blocked_customers", "can only be the right operand of in / not in", 16),
    ("@blocked_customers in @blocked_customers", "can only be the right operand", 1),
    ("customer_id in [@blocked_customers]", "a literal list holds only literals", 17),
    ("amount @ 2 > 1", "'@' must be followed directly by a list name", 8),
    ("customer_id in @ blocked_customers", "'@' must be followed directly by a list name", 16),
    ("customer_id in @@blocked_customers", "'@' must be followed directly by a list name", 16),
    ("_blocked_customers == 1", "names cannot start with '_'", 1),
    ("customer_id in _blocked_customers", "names cannot start with '_'", 16),
    ("ａmount > 1", "names must be ASCII", 1),
    ("\uff3f\uff3fimport\uff3f\uff3f('os')", "", 1),
    ("foo(1) == 1", "'foo' cannot be called", 1),
    ("amount in (1, 2) in (True,)", "cannot be chained", 1),
    ("amount < 2 in (True,)", "cannot be chained", 1),
    ("amount in channel", "needs a literal list", 11),
    ("amount in (1, count)", "a literal list holds only literals", 15),
    ("amount in ()", "the literal list is empty", 11),
    ("(1, 2) == amount", "a literal list can only be the right operand", 1),
    ("amount >", "invalid syntax", 9),
    ("amount > (1", "'(' was never closed", 10),
    ("channel == 'pos", "unterminated string literal", 12),
    ("amount > 1; amount", "invalid syntax", 11),
    ("import os", "invalid syntax", 1),
    ("", "the rule is empty", 1),
    ("   \n ", "the rule is empty", 1),
    ("amount > 1" + " " * MAX_LENGTH + "or verified", "longer than", MAX_LENGTH),
    ("true and amount > 1", "did you mean True?", 1),
    ("amout > 1", "unknown name 'amout'; did you mean amount?", 1),
    ("customer_id in @blocked_customer", "unknown list @blocked_customer; did you mean", 16),
    ("await amount", "", 1),
    ("amount\n  > 1\n >", "unexpected indent", 2),  # the tokenizer's IndentationError
    ("amount > 1 \\", "unexpected character after line continuation", 12),
]


@pytest.mark.parametrize(("text", "message", "column"), REFUSED)
def test_other_constructs_are_refused_with_a_message_and_their_column(
    text: str, message: str, column: int
) -> None:
    error = refused(text)
    assert message in error.message
    assert error.column == column
    assert f"column {column}: " in str(error)


def test_positions_count_characters_not_bytes_and_name_the_line() -> None:
    error = refused("'é€' == channel and amount > 'x'")
    assert error.column == 30
    error = refused("(amount > 1 and\n  channel + 1 > 2)")
    assert (error.line, error.column) == (2, 3)
    assert str(error).startswith("line 2, column 3: ")


def test_a_refused_node_carries_its_end_column_for_highlighting() -> None:
    error = refused("verified and amount.real > 1")
    assert (error.column, error.end_column) == (14, 25)


@pytest.mark.parametrize("depth", [70, 500, 3000])
def test_deep_nesting_is_refused_not_a_crash(depth: int) -> None:
    assert "nested" in refused("-" * depth + "amount > 1").message or depth > MAX_LENGTH
    assert refused("not " * depth + "verified")
