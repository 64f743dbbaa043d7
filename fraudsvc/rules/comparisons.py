"""Comparisons: `== != < <= > >=` (chained too) and membership (`in` / `not in` against a
literal list or an `@list`), with their static type checks."""

from __future__ import annotations

import ast
import difflib
import operator
from typing import TYPE_CHECKING

from fraudsvc.rules import runtime
from fraudsvc.rules.parsing import LIST_PREFIX
from fraudsvc.rules.schema import KIND_VALUES, StaticType
from fraudsvc.rules.typed import DESCRIBED, NOTHING, Typed

if TYPE_CHECKING:
    from fraudsvc.rules.compiler import Compiler

OPERATORS: dict[type[ast.cmpop], tuple[runtime.Op, bool]] = {  # op, is an ordering
    ast.Eq: (operator.eq, False),
    ast.NotEq: (operator.ne, False),
    ast.Lt: (operator.lt, True),
    ast.LtE: (operator.le, True),
    ast.Gt: (operator.gt, True),
    ast.GtE: (operator.ge, True),
}
# `literal <op> name` is fused as `name <mirrored op> literal`
MIRRORED: dict[type[ast.cmpop], runtime.Op] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.gt,
    ast.LtE: operator.ge,
    ast.Gt: operator.lt,
    ast.GtE: operator.le,
}
LITERAL_LISTS = (ast.List, ast.Tuple, ast.Set)


def compile_compare(c: Compiler, node: ast.Compare, depth: int) -> Typed:
    for op_node in node.ops:
        if isinstance(op_node, ast.Is | ast.IsNot):
            raise c.source.error(node, "`is` is not allowed; use == or missing(x)")
    if any(isinstance(o, ast.In | ast.NotIn) for o in node.ops):
        if len(node.ops) > 1:
            raise c.source.error(
                node, "in / not in cannot be chained with other comparisons; join them with and"
            )
        return _membership(c, node, depth)
    nodes = [node.left, *node.comparators]
    typed = [c.expr(n, depth + 1) for n in nodes]
    needs: list[set[StaticType]] = [set() for _ in nodes]
    steps: list[runtime.Op] = []
    for i, op_node in enumerate(node.ops):
        op, ordering = OPERATORS[type(op_node)]
        a, b = typed[i], typed[i + 1]
        for t, n in ((a, nodes[i]), (b, nodes[i + 1])):
            if ordering and t.type == "bool":
                raise c.source.error(n, f"true/false values have no order: {c.where(n)}")
        if "any" not in (a.type, b.type) and a.type != b.type:
            raise c.source.error(
                nodes[i + 1],
                f"cannot compare {DESCRIBED[a.type]} with {DESCRIBED[b.type]}: "
                f"`{c.source.segment(node)}`",
            )
        if a.type == "any" and b.type == "any":
            steps.append(runtime.dynamic(op, ordering, c.where(node)))
            continue
        steps.append(op)
        if a.type == "any":
            needs[i].add(b.type)
        if b.type == "any":
            needs[i + 1].add(a.type)
    fns = []
    for t, n, need in zip(typed, nodes, needs, strict=True):
        if len(need) > 1:
            raise c.source.error(n, f"{c.where(n)} is compared with values of different types")
        fns.append(c.expect(t, n, need.pop(), "the comparison") if need else t.fn)
    if len(steps) == 1:
        return Typed("bool", _fused(typed, node.ops[0]) or runtime.compare(steps[0], *fns))
    return Typed("bool", runtime.chain(fns, steps))


def _fused(typed: list[Typed], op: ast.cmpop) -> runtime.Fn | None:
    """`name <op> literal` (or `literal <op> name`) as one closure: the commonest rule term."""
    left, right = typed
    if left.field is not None and right.constant is not NOTHING:
        (name, spec), c, fused_op = left.field, right.constant, OPERATORS[type(op)][0]
    elif right.field is not None and left.constant is not NOTHING:
        (name, spec), c, fused_op = right.field, left.constant, MIRRORED[type(op)]
    else:
        return None
    return runtime.field_against_constant(name, spec.optional, spec.type == "number", fused_op, c)


def _membership(c: Compiler, node: ast.Compare, depth: int) -> Typed:
    negate = isinstance(node.ops[0], ast.NotIn)
    word = "not in" if negate else "in"
    right = node.comparators[0]
    left = c.expr(node.left, depth + 1)
    if isinstance(right, LITERAL_LISTS):
        values, element_type = _literal_values(c, right)
        fn = c.expect(left, node.left, element_type, f"{word} {c.source.segment(right)}")
        return Typed("bool", runtime.in_literal(fn, frozenset(values), negate))
    if isinstance(right, ast.Name) and right.id.startswith(LIST_PREFIX):
        name = right.id[len(LIST_PREFIX) :]
        kind = c.list_kinds.get(name)
        if kind is None:
            hint = difflib.get_close_matches(name, list(c.list_kinds), n=1)
            suggestion = f"; did you mean @{hint[0]}?" if hint else ""
            raise c.source.error(right, f"unknown list @{name}{suggestion}")
        c.lists.add(name)
        if left.type in ("number", "bool"):
            raise c.source.error(
                node.left,
                f"@{name} holds {KIND_VALUES[kind]}"
                + ("" if kind == "string" else ", which are strings")
                + f"; `{c.source.segment(node.left)}` is {DESCRIBED[left.type]}",
            )
        if left.kind is not None and kind not in (left.kind, "string"):
            raise c.source.error(
                node.left,
                f"@{name} holds {KIND_VALUES[kind]}; `{c.source.segment(node.left)}` holds "
                f"{KIND_VALUES[left.kind]}",
            )
        fn = c.expect(left, node.left, "string", f"{word} @{name}")
        return Typed("bool", runtime.in_list(fn, name, negate))
    raise c.source.error(
        right,
        f'{word} needs a literal list such as ("a", "b") or a list reference such as @name',
    )


def _literal_values(
    c: Compiler, node: ast.List | ast.Tuple | ast.Set
) -> tuple[list[object], StaticType]:
    if not node.elts:
        raise c.source.error(node, "the literal list is empty")
    values: list[object] = []
    types: dict[StaticType, ast.expr] = {}
    for element in node.elts:
        literal = isinstance(element, ast.Constant) or (
            isinstance(element, ast.UnaryOp)
            and isinstance(element.op, ast.USub)
            and isinstance(element.operand, ast.Constant)
        )
        if not literal:
            raise c.source.error(
                element, f"a literal list holds only literals; {c.where(element)} is not one"
            )
        typed = c.expr(element, 0)
        types.setdefault(typed.type, element)
        values.append(typed.constant)
    if len(types) > 1:
        (t1, n1), (t2, n2) = list(types.items())[:2]
        raise c.source.error(
            n2,
            f"a literal list holds values of one type: `{c.source.segment(n1)}` is "
            f"{DESCRIBED[t1]}, `{c.source.segment(n2)}` is {DESCRIBED[t2]}",
        )
    return values, next(iter(types))
