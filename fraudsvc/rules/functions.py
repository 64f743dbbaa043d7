"""The only functions a rule may call, with their signatures: the compiler checks argument
counts and types against these, and builds each call from its `build`.

Every function but `present` and `missing` is missing when any argument is missing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fraudsvc.rules.runtime import Context, Fn, ListLookup
from fraudsvc.rules.schema import StaticType


@dataclass(frozen=True)
class Function:
    """`params` are the argument types (None: any type); a variadic function repeats its only
    parameter type, at least `min_args` times."""

    signature: str
    params: tuple[StaticType | None, ...]
    returns: StaticType
    build: Callable[[Sequence[Fn]], Fn]
    variadic: bool = False
    min_args: int = 0

    def param(self, index: int) -> StaticType | None:
        return self.params[0] if self.variadic else self.params[index]


def _unary(apply: Callable[[Any], Any]) -> Callable[[Sequence[Fn]], Fn]:
    def build(args: Sequence[Fn]) -> Fn:
        (arg,) = args

        def fn(ctx: Context, lists: ListLookup) -> Any:
            v = arg(ctx, lists)
            return None if v is None else apply(v)

        return fn

    return build


def _binary(apply: Callable[[Any, Any], Any]) -> Callable[[Sequence[Fn]], Fn]:
    def build(args: Sequence[Fn]) -> Fn:
        first, second = args

        def fn(ctx: Context, lists: ListLookup) -> Any:
            a = first(ctx, lists)
            b = second(ctx, lists)
            return None if a is None or b is None else apply(a, b)

        return fn

    return build


def _extreme(pick: Callable[[list[Any]], Any]) -> Callable[[Sequence[Fn]], Fn]:
    def build(args: Sequence[Fn]) -> Fn:
        def fn(ctx: Context, lists: ListLookup) -> Any:
            values = [arg(ctx, lists) for arg in args]
            return None if None in values else pick(values)

        return fn

    return build


def _presence(present: bool) -> Callable[[Sequence[Fn]], Fn]:
    def build(args: Sequence[Fn]) -> Fn:
        (arg,) = args

        def fn(ctx: Context, lists: ListLookup) -> Any:
            return (arg(ctx, lists) is not None) is present

        return fn

    return build


FUNCTIONS: dict[str, Function] = {
    "abs": Function("abs(number) -> number", ("number",), "number", _unary(abs)),
    "min": Function(
        "min(number, number, ...) -> number", ("number",), "number", _extreme(min), True, 2
    ),
    "max": Function(
        "max(number, number, ...) -> number", ("number",), "number", _extreme(max), True, 2
    ),
    "lower": Function("lower(string) -> string", ("string",), "string", _unary(str.lower)),
    "upper": Function("upper(string) -> string", ("string",), "string", _unary(str.upper)),
    "startswith": Function(
        "startswith(string, prefix) -> bool",
        ("string", "string"),
        "bool",
        _binary(str.startswith),
    ),
    "endswith": Function(
        "endswith(string, suffix) -> bool", ("string", "string"), "bool", _binary(str.endswith)
    ),
    "contains": Function(
        "contains(string, part) -> bool",
        ("string", "string"),
        "bool",
        _binary(lambda text, part: part in text),
    ),
    "present": Function("present(value) -> bool (never missing)", (None,), "bool", _presence(True)),
    "missing": Function(
        "missing(value) -> bool (never missing)", (None,), "bool", _presence(False)
    ),
}
