"""Properties of the rule language (hypothesis).

1. Any well-typed expression built from the grammar, on any context (values present, missing,
   NaN, infinite; attributes of every type, some wrong), gives the same outcome compiled as by
   the plain reference interpreter below, which walks the same parsed tree node by node and
   follows the semantics documented in `fraudsvc.rules.language`.
2. Arbitrary text (random unicode, random bytes with lone surrogates, soups of the language's
   own tokens) is either compiled or refused with RuleError: the parser never fails otherwise,
   and what compiles evaluates to an outcome without raising.
"""

from __future__ import annotations

import ast
import functools
import math
import operator
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from fraudsvc.rules.errors import RuleError
from fraudsvc.rules.language import compile_rule
from fraudsvc.rules.parsing import parse
from fraudsvc.rules.runtime import ListLookup
from tests.rules_support import LIST_KINDS, LISTS, NOW, SCHEMA

# --- the reference interpreter -------------------------------------------------------------


class Failed(Exception):
    """The reference's run-time error."""


FUNCTION_TYPES = {"abs": "number", "min": "number", "max": "number", "lower": "string"}
FUNCTION_TYPES |= {"upper": "string"}  # the others return bool
FUNCTION_PARAMS = {"abs": "number", "min": "number", "max": "number", "lower": "string"}
FUNCTION_PARAMS |= {"upper": "string", "startswith": "string", "endswith": "string"}
FUNCTION_PARAMS |= {"contains": "string", "present": "any", "missing": "any"}
OPS = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le}
OPS |= {ast.Gt: operator.gt, ast.GtE: operator.ge}
ARITH = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}
ARITH |= {ast.Div: operator.truediv, ast.Mod: operator.mod}


def kind_of(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return "string" if isinstance(value, str) else "other"


def static(node: ast.expr) -> str:
    """The node's type as the language defines it ("any" for attributes)."""
    if isinstance(node, ast.Constant):
        return kind_of(node.value)
    if isinstance(node, ast.Name):
        return SCHEMA[node.id].type
    if isinstance(node, ast.Attribute):
        return "any"
    if isinstance(node, ast.UnaryOp):
        return "bool" if isinstance(node.op, ast.Not) else "number"
    if isinstance(node, ast.BinOp):
        return "number"
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name)
        return FUNCTION_TYPES.get(node.func.id, "bool")
    return "bool"  # BoolOp, Compare


def checked(value: object, wanted: str) -> Any:
    if value is not None and wanted != "any" and kind_of(value) != wanted:
        raise Failed(f"{value!r} is not a {wanted}")
    return value


def run(node: ast.expr, ctx: dict[str, Any], lists: ListLookup) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        value = ctx.get(node.id)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            if not SCHEMA[node.id].optional:
                raise Failed(f"{node.id} is required")
            return None
        return value
    if isinstance(node, ast.Attribute):
        attributes = ctx.get("attributes")
        value = None if attributes is None else attributes.get(node.attr)
        if value is not None and kind_of(value) == "other":
            raise Failed("an attribute of another type")
        return None if isinstance(value, float) and math.isnan(value) else value
    if isinstance(node, ast.UnaryOp):
        wanted = "bool" if isinstance(node.op, ast.Not) else "number"
        value = checked(run(node.operand, ctx, lists), wanted)
        if value is None:
            return None
        return (not value) if wanted == "bool" else -value
    if isinstance(node, ast.BinOp):
        a = checked(run(node.left, ctx, lists), "number")
        b = checked(run(node.right, ctx, lists), "number")
        if a is None or b is None:
            return None
        try:
            computed = ARITH[type(node.op)](a, b)
        except ArithmeticError as error:
            raise Failed(str(error)) from None
        if computed != computed:
            raise Failed("NaN")
        return computed
    if isinstance(node, ast.BoolOp):
        deciding = isinstance(node.op, ast.Or)  # True decides `or`, False decides `and`
        result: bool | None = not deciding
        for operand in node.values:
            value = checked(run(operand, ctx, lists), "bool")
            if value is deciding:
                return deciding
            if value is None:
                result = None
        return result
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name)
        name, wanted = node.func.id, FUNCTION_PARAMS[node.func.id]
        args = [checked(run(arg, ctx, lists), wanted) for arg in node.args]
        if name in ("present", "missing"):
            return (args[0] is None) is (name == "missing")
        if None in args:
            return None
        simple: dict[str, Callable[..., Any]] = {
            "abs": abs,
            "min": min,
            "max": max,
            "lower": str.lower,
            "upper": str.upper,
        }
        if name in simple:
            return simple[name](*args) if name in ("min", "max") else simple[name](args[0])
        text, part = args
        return {
            "startswith": text.startswith(part),
            "endswith": text.endswith(part),
            "contains": part in text,
        }[name]
    assert isinstance(node, ast.Compare)
    return compare(node, ctx, lists)


def compare(node: ast.Compare, ctx: dict[str, Any], lists: ListLookup) -> Any:
    if isinstance(node.ops[0], ast.In | ast.NotIn):
        negate = isinstance(node.ops[0], ast.NotIn)
        right = node.comparators[0]
        if isinstance(right, ast.Name):  # a list reference, `_name` after the rewrite
            value = checked(run(node.left, ctx, lists), "string")
            return None if value is None else lists.contains(right.id[1:], value) != negate
        assert isinstance(right, ast.List | ast.Tuple | ast.Set)
        members = [run(e, ctx, lists) for e in right.elts]
        value = checked(run(node.left, ctx, lists), kind_of(members[0]))
        return None if value is None else (value in members) != negate
    nodes = [node.left, *node.comparators]
    types = [static(n) for n in nodes]

    def operand(i: int) -> Any:
        known = {types[j] for j in (i - 1, i + 1) if 0 <= j < len(nodes)} - {"any"}
        return checked(run(nodes[i], ctx, lists), known.pop() if known else "any")

    result: bool | None = True
    a = operand(0)
    for i, op in enumerate(node.ops):
        b = operand(i + 1)
        if a is None or b is None:
            result = None
        else:
            if kind_of(a) != kind_of(b):
                raise Failed("compared values of different types")
            if kind_of(a) == "bool" and not isinstance(op, ast.Eq | ast.NotEq):
                raise Failed("ordered bools")
            if not OPS[type(op)](a, b):
                return False
        a = b
    return result


def reference(text: str, ctx: dict[str, Any]) -> tuple[str, bool | None]:
    body = parse(text).tree.body
    try:
        value = checked(run(body, ctx, LISTS.at(NOW)), "bool")
    except Failed:
        return "error", None
    return ("fired" if value is True else "not_fired"), value


# --- well-typed expressions from the grammar -----------------------------------------------

NUMBERS = st.sampled_from(["0", "1", "2", "3", "10", "0.5", "2.5", "100", "1e308", "-1", "-0.5"])
STRINGS = st.sampled_from(
    ["pos", "POS", "C666", "C1", "ng", "NG", "@words", "@blocked_customers", "", "a'b", "10.1.2.3"]
).map(repr)
KINDED = {"customer_id": "customer", "card_country": "country", "ip": "ip"}


def leaf_strings(list_kind: str | None) -> st.SearchStrategy[str]:
    names = ["channel", "attributes.s"] + [
        name for name, kind in KINDED.items() if list_kind in (None, "string", kind)
    ]
    return st.one_of(st.sampled_from(names), STRINGS)


@functools.cache  # strategies are built once per (type, depth, list kind), not per example
def expression(kind: str, depth: int, list_kind: str | None = None) -> st.SearchStrategy[str]:
    if kind == "number":
        leaf = st.one_of(
            st.sampled_from(["amount", "score", "count", "ratio", "attributes.n", "attributes.m"]),
            NUMBERS,
        )
    elif kind == "string":
        leaf = leaf_strings(list_kind)
    else:
        leaf = st.sampled_from(["verified", "flagged", "attributes.b", "True", "False"])
    if depth == 0:
        return leaf
    n, s, b = (expression(k, depth - 1) for k in ("number", "string", "bool"))
    ops = st.sampled_from(["==", "!=", "<", "<=", ">", ">="])
    if kind == "number":
        branches = [
            st.tuples(n, st.sampled_from(["+", "-", "*", "/", "%"]), n).map(
                lambda t: f"({t[0]} {t[1]} {t[2]})"
            ),
            n.map(lambda x: f"-({x})"),
            n.map(lambda x: f"abs({x})"),
            st.tuples(st.sampled_from(["min", "max"]), st.lists(n, min_size=2, max_size=3)).map(
                lambda t: f"{t[0]}({', '.join(t[1])})"
            ),
        ]
    elif kind == "string":
        inner = expression("string", depth - 1, list_kind)
        branches = [
            st.tuples(st.sampled_from(["lower", "upper"]), inner).map(lambda t: f"{t[0]}({t[1]})")
        ]
    else:
        any_expr = st.one_of(n, s, b)
        lists = st.sampled_from(sorted(LIST_KINDS))
        branches = [
            st.tuples(n, ops, n).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
            st.tuples(n, ops, n, ops, n).map(lambda t: f"({' '.join(t)})"),
            st.tuples(s, ops, s).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
            st.tuples(b, st.sampled_from(["==", "!="]), b).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
            st.tuples(
                n, st.sampled_from(["in", "not in"]), st.lists(NUMBERS, min_size=1, max_size=3)
            ).map(lambda t: f"({t[0]} {t[1]} ({', '.join(t[2])},))"),
            st.tuples(
                s, st.sampled_from(["in", "not in"]), st.lists(STRINGS, min_size=1, max_size=3)
            ).map(lambda t: f"({t[0]} {t[1]} [{', '.join(t[2])}])"),
            lists.flatmap(
                lambda name: st.tuples(
                    expression("string", depth - 1, LIST_KINDS[name]),
                    st.sampled_from(["in", "not in"]),
                ).map(lambda t: f"({t[0]} {t[1]} @{name})")
            ),
            b.map(lambda x: f"(not {x})"),
            st.tuples(st.sampled_from([" and ", " or "]), st.lists(b, min_size=2, max_size=3)).map(
                lambda t: f"({t[0].join(t[1])})"
            ),
            st.tuples(st.sampled_from(["present", "missing"]), any_expr).map(
                lambda t: f"{t[0]}({t[1]})"
            ),
            st.tuples(st.sampled_from(["startswith", "endswith", "contains"]), s, s).map(
                lambda t: f"{t[0]}({t[1]}, {t[2]})"
            ),
        ]
    return st.one_of(leaf, *branches)


VALUES = {
    "number": st.sampled_from([0, 1, -1, 2.5, 10, 100, 1e308, -1e308, math.inf, 0.0]),
    "string": st.sampled_from(["pos", "POS", "C666", "C1", "ng", "NG", "@words", "", "10.1.2.3"]),
    "bool": st.booleans(),
}
ABSENT: Any = object()


@st.composite
def contexts(draw: st.DrawFn) -> dict[str, Any]:
    ctx: dict[str, Any] = {}
    for name, spec in SCHEMA.items():
        choices = [VALUES[spec.type]] * 6
        choices += [st.just(ABSENT), st.just(None)] + (
            [st.just(math.nan)] if spec.type == "number" else []
        )
        if name == "ip":
            choices.append(st.sampled_from(["192.0.2.7", "2001:db8::1", "8.8.8.8", "junk"]))
        # required names are nearly always present: their absence is a caller bug
        value = draw(st.one_of(*choices) if spec.optional else st.one_of(*choices[:7]))
        if value is not ABSENT:
            ctx[name] = value
    attribute_value = st.one_of(*VALUES.values(), st.none(), st.just(math.nan), st.just([1]))
    attributes = draw(
        st.one_of(
            st.none(),
            st.dictionaries(st.sampled_from(["n", "m", "s", "b"]), attribute_value, max_size=4),
        )
    )
    if attributes is not None:
        ctx["attributes"] = attributes
    return ctx


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(0, 3).flatmap(lambda d: expression("bool", d)),
    st.lists(contexts(), min_size=1, max_size=4),
)
def test_compiled_rules_agree_with_the_reference_interpreter(
    text: str, samples: list[dict[str, Any]]
) -> None:
    rule = compile_rule(text, SCHEMA, LIST_KINDS)
    for ctx in samples:
        outcome = rule.evaluate(ctx, LISTS.at(NOW))
        event(f"{outcome.status} {outcome.value}")
        assert (outcome.status, outcome.value) == reference(text, ctx), (text, ctx, outcome)


# --- arbitrary text ------------------------------------------------------------------------

TOKENS = [
    "amount", "channel", "attributes", ".", "x", "__class__", "_x", "@", "@words", "@nope",
    "(", ")", "[", "]", "{", "}", ",", ":", ";", "=", "==", "<", ">", "+", "-", "*", "**", "/",
    "//", "%", "not", "and", "or", "in", "is", "if", "else", "lambda", "for", "True", "None",
    "1", "0", "1e999", "'s'", '"@x"', "f'{x}'", "'", '"', "\\", "\n", "#", "min", "lower",
    "present", "abs", "__import__", ":=", "*", "yield", "await", "é", "\x00", "\r", "\t",
    "\n ", "\n  ", "\n\t", "\\\n", "\'\'\'", "\x0c",
]  # fmt: skip


def compiles_or_refuses(text: str) -> None:
    try:
        rule = compile_rule(text, SCHEMA, LIST_KINDS)
    except RuleError:
        return
    outcome = rule.evaluate({"amount": 1.0, "score": 0.5, "customer_id": "C1"}, LISTS.at(NOW))
    assert outcome.status in ("fired", "not_fired", "error")


FUZZ = settings(max_examples=400, deadline=None)


@FUZZ
@given(st.text(max_size=200))
def test_random_text_is_compiled_or_refused_with_rule_error(text: str) -> None:
    compiles_or_refuses(text)


@FUZZ
@given(st.binary(max_size=200))
def test_random_bytes_are_compiled_or_refused_with_rule_error(data: bytes) -> None:
    compiles_or_refuses(data.decode("utf-8", errors="surrogateescape"))
    compiles_or_refuses(data.decode("latin-1"))


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=30), st.sampled_from(["", " "]))
def test_token_soups_are_compiled_or_refused_with_rule_error(tokens: list[str], sep: str) -> None:
    compiles_or_refuses(sep.join(tokens))
