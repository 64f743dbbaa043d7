"""Type errors that can be seen before running are refused at submission, with the column of
the operand at fault; what only a value can tell (`attributes.<key>`) compiles and is checked
when the rule runs."""

from __future__ import annotations

import pytest

from fraudsvc.rules.language import compile_rule
from fraudsvc.rules.schema import Field, Schema, transaction_schema
from tests.rules_support import LIST_KINDS, compiled, evaluate, refused

TYPE_ERRORS: list[tuple[str, str, int]] = [
    ('amount > "x"', "cannot compare a number with a string", 10),
    ('"x" == amount', "cannot compare a string with a number", 8),
    ("amount == True", "cannot compare a number with true/false", 11),
    ("1 < amount < 'x'", "cannot compare a number with a string", 14),
    ("verified < True", "true/false values have no order", 1),
    ("channel + 1 > 2", "+ needs a number; `channel` is a string", 1),
    ("amount * verified > 2", "* needs a number; `verified` is true/false", 10),
    ("-channel == 'x'", "unary minus needs a number", 2),
    ("not amount", "not needs true/false; `amount` is a number", 5),
    ("amount and verified", "and needs true/false; `amount` is a number", 1),
    ("verified or channel", "or needs true/false; `channel` is a string", 13),
    ("amount + 1", "a rule must be true or false; this expression is a number", 1),
    ("channel", "a rule must be true or false; this expression is a string", 1),
    ("lower(amount) == 'x'", "lower() needs a string; `amount` is a number", 7),
    ("abs('x') > 1", "abs() needs a number", 5),
    ("min(1) > 1", "wrong number of arguments: min(number, number, ...)", 1),
    ("startswith(channel)", "wrong number of arguments: startswith(string, prefix)", 1),
    ("present()", "wrong number of arguments", 1),
    ("channel in (1, 2)", "in (1, 2) needs a number; `channel` is a string", 1),
    ("amount in ('a', 'b')", "needs a string; `amount` is a number", 1),
    ("amount in (1, 'a')", "a literal list holds values of one type", 15),
    ("amount in (1, True)", "a literal list holds values of one type", 15),
    ("amount in @blocked_customers", "@blocked_customers holds customer ids, which are strings", 1),
    ("verified in @words", "@words holds strings; `verified` is true/false", 1),
    ("customer_id in @bad_networks", "@bad_networks holds IP addresses and networks", 1),
    ("card_country in @blocked_customers", "`card_country` holds country codes", 1),
    ("1 < attributes.x < 'a'", "is compared with values of different types", 5),
]


@pytest.mark.parametrize(("text", "message", "column"), TYPE_ERRORS)
def test_static_type_errors_are_refused_where_they_are(
    text: str, message: str, column: int
) -> None:
    error = refused(text)
    assert message in error.message
    assert error.column == column


@pytest.mark.parametrize(
    "text",
    [
        "channel in @bad_networks",  # a string with no kind may be looked up in any list
        "lower(channel) in @blocked_customers",
        "customer_id in @words",  # string lists take any string
        "card_country in @risky_countries",
        "attributes.x in @blocked_customers",
        "attributes.x > 1 and attributes.y == 'a' and attributes.z",
        "attributes.x + 1 > amount",
        "not attributes.x",
        "present(amount) and missing(attributes.x) and present(verified)",
    ],
)
def test_well_typed_rules_compile(text: str) -> None:
    assert compiled(text).text == text


def test_a_compiled_rule_lists_the_names_attributes_and_lists_it_reads() -> None:
    rule = compiled("amount > attributes.limit and customer_id in @blocked_customers or verified")
    assert rule.names == frozenset({"amount", "customer_id", "verified"})
    assert rule.attributes == frozenset({"limit"})
    assert rule.lists == frozenset({"blocked_customers"})


@pytest.mark.parametrize(
    ("text", "attributes", "message"),
    [
        ("attributes.x > 1", {"x": "a"}, "`attributes.x` (column 1) is a string, not a number"),
        ("attributes.x == 'a'", {"x": 1}, "`attributes.x` (column 1) is a number, not a string"),
        ("attributes.x == 1", {"x": True}, "is a bool, not a number"),
        ("attributes.x and True", {"x": 1}, "is a number, not a bool"),
        ("attributes.x in @words", {"x": 3}, "is a number, not a string"),
        ("attributes.x in (1, 2)", {"x": "1"}, "is a string, not a number"),
        ("attributes.x == attributes.y", {"x": 1, "y": "1"}, "compares a number with a string"),
        ("attributes.x < attributes.y", {"x": True, "y": False}, "orders true/false values"),
        ("attributes.x", {"x": "yes"}, "the rule's value `attributes.x` (column 1) is a string"),
        ("attributes.x == 1", {"x": [1]}, "`attributes.x` (column 1) is a list"),
        ("present(attributes.x)", {"x": {"a": 1}}, "is a dict, not a number, string or bool"),
    ],
)
def test_attribute_types_are_checked_when_the_rule_runs(
    text: str, attributes: dict[str, object], message: str
) -> None:
    outcome = evaluate(text, attributes=attributes)
    assert outcome.status == "error"
    assert outcome.error is not None
    assert message in outcome.error


def test_schema_names_are_checked() -> None:
    for bad in ("Amount", "attributes", "not", "_x", "a" * 65, "1a"):
        with pytest.raises(ValueError, match="schema name"):
            Schema({bad: Field("number")})
    with pytest.raises(ValueError, match="list kind"):
        Field("number", kind="customer")


def test_the_transaction_schema_holds_fields_features_and_the_model_output() -> None:
    schema = transaction_schema(["amount", "customer_nb_tx_1d", "terminal_risk_7d"])
    assert schema["amount"] == Field("number")
    assert schema["customer_nb_tx_1d"] == Field("number")
    assert schema["ip"] == Field("string", optional=True, kind="ip")
    assert schema["score"].type == "number"
    assert schema["model_decision"].type == "string"
    rule = compile_rule(
        'customer_nb_tx_1d > 3 and model_decision == "review" and ip in @bad_networks',
        schema,
        LIST_KINDS,
    )
    assert rule.names == {"customer_nb_tx_1d", "model_decision", "ip"}
    with pytest.raises(ValueError, match="clashes"):
        transaction_schema(["channel"])
