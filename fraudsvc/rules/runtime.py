"""The closures a compiled rule is made of: each takes (context, lists) and returns a value, or
None for *missing*. They are built once per rule by `fraudsvc.rules.compiler`, which has already
checked every static type; the checks left here are the ones only a value can answer
(`attributes.<key>`, division by zero, a required value absent).

Kept small and flat on purpose: this is the scoring path, evaluated for every rule on every
transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from fraudsvc.rules.errors import Fault


class ListLookup(Protocol):
    """Answers `value in @name`; `fraudsvc.rules.lists.ListView` is the real one."""

    def contains(self, name: str, value: str) -> bool: ...


Context = Mapping[str, Any]
Fn = Callable[[Context, ListLookup], Any]
Op = Callable[[Any, Any], Any]


def value_type(value: object) -> str:
    """The language's name for a run-time value's type (bool before number: bool is an int)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return type(value).__name__


def constant(value: object) -> Fn:
    def fn(ctx: Context, lists: ListLookup) -> Any:
        return value

    return fn


def field(name: str, optional: bool, numeric: bool) -> Fn:
    """A schema name. Absent, None and (for numbers) NaN are missing; a required name missing is
    a fault: the caller broke its schema."""
    if optional and numeric:

        def optional_number(ctx: Context, lists: ListLookup) -> Any:
            v = ctx.get(name)
            return None if v is None or v != v else v

        return optional_number
    if optional:

        def optional_value(ctx: Context, lists: ListLookup) -> Any:
            return ctx.get(name)

        return optional_value

    def required(ctx: Context, lists: ListLookup) -> Any:
        v = ctx.get(name)
        if v is None or (numeric and v != v):
            raise Fault(f"{name} has no value, but the schema says it is always present")
        return v

    return required


def attribute(key: str, where: str) -> Fn:
    """`attributes.<key>`: missing when the map or the key is absent (or None, or NaN); a value
    that is not a number, string or bool is a fault."""

    def fn(ctx: Context, lists: ListLookup) -> Any:
        attributes = ctx.get("attributes")
        if attributes is None:
            return None
        v = attributes.get(key)
        if v is None:
            return None
        if isinstance(v, str | bool | int | float):
            return None if v != v else v
        raise Fault(f"{where} is a {type(v).__name__}, not a number, string or bool")

    return fn


def expect(inner: Fn, wanted: str, where: str) -> Fn:
    """Check at run time that an `attributes.<key>` value has the type its use needs."""
    if wanted == "number":

        def number(ctx: Context, lists: ListLookup) -> Any:
            v = inner(ctx, lists)
            if v is None or (isinstance(v, int | float) and not isinstance(v, bool)):
                return v
            raise Fault(f"{where} is a {value_type(v)}, not a number")

        return number
    python_type = {"string": str, "bool": bool}[wanted]

    def other(ctx: Context, lists: ListLookup) -> Any:
        v = inner(ctx, lists)
        if v is None or isinstance(v, python_type):
            return v
        raise Fault(f"{where} is a {value_type(v)}, not a {wanted}")

    return other


def negative(inner: Fn) -> Fn:
    def fn(ctx: Context, lists: ListLookup) -> Any:
        v = inner(ctx, lists)
        return None if v is None else -v

    return fn


def logical_not(inner: Fn) -> Fn:
    def fn(ctx: Context, lists: ListLookup) -> Any:
        v = inner(ctx, lists)
        return None if v is None else not v

    return fn


def arithmetic(op: Op, left: Fn, right: Fn, where: str) -> Fn:
    """Both operands are evaluated; missing if either is missing. A result that is not a finite
    number or infinity (NaN), or an arithmetic exception, is a fault naming the expression."""

    def fn(ctx: Context, lists: ListLookup) -> Any:
        a = left(ctx, lists)
        b = right(ctx, lists)
        if a is None or b is None:
            return None
        try:
            v = op(a, b)
        except ArithmeticError as error:
            raise Fault(f"{error} in {where}") from None
        if v != v:
            raise Fault(f"{where} is not a number (NaN)")
        return v

    return fn


def dynamic(op: Op, ordering: bool, where: str) -> Op:
    """A comparison of two `attributes` values, whose types are only known at run time."""

    def checked(a: Any, b: Any) -> Any:
        if value_type(a) != value_type(b):
            raise Fault(f"{where} compares a {value_type(a)} with a {value_type(b)}")
        if ordering and isinstance(a, bool):
            raise Fault(f"{where} orders true/false values, which have no order")
        return op(a, b)

    return checked


def compare(op: Op, left: Fn, right: Fn) -> Fn:
    """One comparison: both operands evaluated, missing if either is missing."""

    def fn(ctx: Context, lists: ListLookup) -> Any:
        a = left(ctx, lists)
        b = right(ctx, lists)
        if a is None or b is None:
            return None
        return op(a, b)

    return fn


def field_against_constant(name: str, optional: bool, numeric: bool, op: Op, c: object) -> Fn:
    """`name <op> literal`, the commonest rule term, in one call instead of three."""
    if optional:

        def optional_fn(ctx: Context, lists: ListLookup) -> Any:
            v = ctx.get(name)
            if v is None or v != v:
                return None
            return op(v, c)

        return optional_fn

    def required_fn(ctx: Context, lists: ListLookup) -> Any:
        v = ctx.get(name)
        if v is None or (numeric and v != v):
            raise Fault(f"{name} has no value, but the schema says it is always present")
        return op(v, c)

    return required_fn


def chain(operands: Sequence[Fn], steps: Sequence[Callable[[Any, Any], Any]]) -> Fn:
    """`a < b < c`: each pair is one term of an `and` (Kleene), each operand is evaluated at most
    once, and the chain stops at the first False, like Python's. `steps[i]` compares operands i
    and i+1, never with a missing value."""
    first, rest = operands[0], list(zip(operands[1:], steps, strict=True))

    def fn(ctx: Context, lists: ListLookup) -> Any:
        a = first(ctx, lists)
        result: bool | None = True
        for operand, step in rest:
            b = operand(ctx, lists)
            if a is None or b is None:
                result = None
            elif not step(a, b):
                return False
            a = b
        return result

    return fn


def all_of(terms: Sequence[Fn]) -> Fn:
    """Kleene `and`: False as soon as a term is False (the rest are not evaluated), else missing
    if a term was missing, else True."""

    def fn(ctx: Context, lists: ListLookup) -> Any:
        result: bool | None = True
        for term in terms:
            v = term(ctx, lists)
            if v is False:
                return False
            if v is None:
                result = None
        return result

    return fn


def any_of(terms: Sequence[Fn]) -> Fn:
    """Kleene `or`: True as soon as a term is True, else missing if one was missing, else False."""

    def fn(ctx: Context, lists: ListLookup) -> Any:
        result: bool | None = False
        for term in terms:
            v = term(ctx, lists)
            if v is True:
                return True
            if v is None:
                result = None
        return result

    return fn


def in_literal(left: Fn, values: frozenset[object], negate: bool) -> Fn:
    def fn(ctx: Context, lists: ListLookup) -> Any:
        v = left(ctx, lists)
        if v is None:
            return None
        return (v in values) is not negate

    return fn


def in_list(left: Fn, name: str, negate: bool) -> Fn:
    def fn(ctx: Context, lists: ListLookup) -> Any:
        v = left(ctx, lists)
        if v is None:
            return None
        return lists.contains(name, v) is not negate

    return fn


def top_level_bool(inner: Fn, where: str) -> Fn:
    """The value of a whole rule whose type is only known at run time (`attributes.vip`)."""

    def fn(ctx: Context, lists: ListLookup) -> Any:
        v = inner(ctx, lists)
        if v is None or isinstance(v, bool):
            return v
        raise Fault(f"the rule's value {where} is a {value_type(v)}, not true or false")

    return fn
