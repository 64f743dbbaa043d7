"""Checked Python AST -> a tree of closures (`fraudsvc.rules.runtime`), with the static checks.

One pass over the tree: every node is either refused with a `RuleError` at its position, or
turned into a `Typed` (its static type and the closure computing it). Nothing here calls eval,
exec or compile: the closures are fixed functions of this package, parametrised by the checked
names, operators and literals.
"""

from __future__ import annotations

import ast
import difflib
import operator
from collections.abc import Mapping
from dataclasses import dataclass, field

from fraudsvc.rules import runtime
from fraudsvc.rules.comparisons import compile_compare
from fraudsvc.rules.functions import FUNCTIONS
from fraudsvc.rules.parsing import LIST_PREFIX, Source
from fraudsvc.rules.schema import ATTRIBUTE_KEY_PATTERN, ATTRIBUTES, ListKind, Schema, StaticType
from fraudsvc.rules.typed import DESCRIBED, NOTHING, Typed

MAX_DEPTH = 64

ARITHMETIC: dict[type[ast.operator], tuple[str, runtime.Op]] = {
    ast.Add: ("+", operator.add),
    ast.Sub: ("-", operator.sub),
    ast.Mult: ("*", operator.mul),
    ast.Div: ("/", operator.truediv),
    ast.Mod: ("%", operator.mod),
}
REFUSED: dict[type[ast.AST], str] = {
    ast.Subscript: "subscripts (x[...]) are not allowed",
    ast.Slice: "slices are not allowed",
    ast.Lambda: "lambda is not allowed",
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "generator expressions are not allowed",
    ast.JoinedStr: "f-strings are not allowed",
    ast.FormattedValue: "f-strings are not allowed",
    ast.NamedExpr: "assignment expressions (:=) are not allowed",
    ast.Starred: "* unpacking is not allowed",
    ast.IfExp: "conditional expressions (x if c else y) are not allowed; use and / or",
    ast.Dict: "dictionaries are not allowed",
    ast.Await: "await is not allowed",
    ast.Yield: "yield is not allowed",
    ast.YieldFrom: "yield is not allowed",
    ast.List: "a literal list can only be the right operand of in / not in",
    ast.Tuple: "a literal list can only be the right operand of in / not in",
    ast.Set: "a literal list can only be the right operand of in / not in",
}


@dataclass
class Compiler:
    """Compiles one parsed rule; collects the names, attribute keys and lists it reads."""

    source: Source
    schema: Schema
    list_kinds: Mapping[str, ListKind]
    names: set[str] = field(default_factory=set)
    attributes: set[str] = field(default_factory=set)
    lists: set[str] = field(default_factory=set)

    def compile(self) -> runtime.Fn:
        body = self.source.tree.body
        top = self.expr(body, 0)
        if top.type == "any":
            return runtime.top_level_bool(top.fn, self.where(body))
        if top.type != "bool":
            raise self.source.error(
                body, f"a rule must be true or false; this expression is {DESCRIBED[top.type]}"
            )
        return top.fn

    def where(self, node: ast.AST) -> str:
        return f"`{self.source.segment(node)}` (column {self.source.position(node)[1]})"

    def expect(self, typed: Typed, node: ast.AST, wanted: StaticType, role: str) -> runtime.Fn:
        """The operand's closure, checked at run time when its type is only known then."""
        if typed.type == wanted:
            return typed.fn
        if typed.type == "any":
            return runtime.expect(typed.fn, wanted, self.where(node))
        raise self.source.error(
            node,
            f"{role} needs {DESCRIBED[wanted]}; `{self.source.segment(node)}` is "
            f"{DESCRIBED[typed.type]}",
        )

    def expr(self, node: ast.expr, depth: int) -> Typed:
        if depth > MAX_DEPTH:
            raise self.source.error(node, f"the rule is nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, ast.Constant):
            return self.constant(node)
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.Attribute):
            return self.attribute(node)
        if isinstance(node, ast.UnaryOp):
            return self.unary(node, depth)
        if isinstance(node, ast.BinOp):
            return self.binary(node, depth)
        if isinstance(node, ast.BoolOp):
            return self.boolean(node, depth)
        if isinstance(node, ast.Compare):
            return compile_compare(self, node, depth)
        if isinstance(node, ast.Call):
            return self.call(node, depth)
        message = REFUSED.get(type(node), f"{type(node).__name__} expressions are not allowed")
        raise self.source.error(node, message)

    def constant(self, node: ast.Constant) -> Typed:
        value = node.value
        kinds: dict[type, StaticType] = {
            bool: "bool",
            int: "number",
            float: "number",
            str: "string",
        }
        kind = kinds.get(type(value))
        if kind is None:
            refused = "None is not allowed; use missing(x)" if value is None else None
            raise self.source.error(
                node, refused or f"{type(value).__name__} literals are not allowed"
            )
        return Typed(kind, runtime.constant(value), constant=value)

    def name(self, node: ast.Name) -> Typed:
        name = node.id
        if name.startswith(LIST_PREFIX):
            raise self.source.error(
                node, f"a list reference @{name[1:]} can only be the right operand of in / not in"
            )
        spec = self.schema.get(name)
        if spec is None:
            if name == ATTRIBUTES:
                raise self.source.error(node, "attributes needs a key: attributes.<key>")
            if name in FUNCTIONS:
                raise self.source.error(node, f"{name} is a function: call it, as in {name}(x)")
            literals = {
                "true": "True",
                "false": "False",
                "null": "missing(x)",
                "none": "missing(x)",
            }
            hint = [literals[name]] if name in literals else None
            hint = hint or difflib.get_close_matches(name, list(self.schema), n=1)
            suggestion = f"; did you mean {hint[0]}?" if hint else ""
            raise self.source.error(node, f"unknown name {name!r}{suggestion}")
        self.names.add(name)
        fn = runtime.field(name, spec.optional, spec.type == "number")
        return Typed(spec.type, fn, kind=spec.kind, field=(name, spec))

    def attribute(self, node: ast.Attribute) -> Typed:
        base = node.value
        if not (isinstance(base, ast.Name) and base.id == ATTRIBUTES):
            raise self.source.error(
                node, f"only attributes.<key> may use '.'; {self.where(node)} is not allowed"
            )
        if not ATTRIBUTE_KEY_PATTERN.match(node.attr):
            raise self.source.error(
                node,
                f"attribute keys match {ATTRIBUTE_KEY_PATTERN.pattern[:-2]}; "
                f"{node.attr!r} does not",
            )
        self.attributes.add(node.attr)
        return Typed("any", runtime.attribute(node.attr, self.where(node)))

    def unary(self, node: ast.UnaryOp, depth: int) -> Typed:
        operand = self.expr(node.operand, depth + 1)
        if isinstance(node.op, ast.Not):
            return Typed(
                "bool", runtime.logical_not(self.expect(operand, node.operand, "bool", "not"))
            )
        if isinstance(node.op, ast.USub):
            fn = self.expect(operand, node.operand, "number", "unary minus")
            if operand.constant is not NOTHING:  # a negative literal, e.g. in (-1, 1)
                return Typed(
                    "number", runtime.constant(-operand.constant), constant=-operand.constant
                )
            return Typed("number", runtime.negative(fn))
        symbol = "+" if isinstance(node.op, ast.UAdd) else "~"
        raise self.source.error(node, f"unary {symbol} is not allowed")

    def binary(self, node: ast.BinOp, depth: int) -> Typed:
        known = ARITHMETIC.get(type(node.op))
        if known is None:
            raise self.source.error(
                node, f"the operator {self.operator_text(node)} is not allowed; use + - * / %"
            )
        symbol, op = known
        left = self.expect(self.expr(node.left, depth + 1), node.left, "number", symbol)
        right = self.expect(self.expr(node.right, depth + 1), node.right, "number", symbol)
        return Typed("number", runtime.arithmetic(op, left, right, self.where(node)))

    def operator_text(self, node: ast.BinOp) -> str:
        names = {ast.Pow: "**", ast.FloorDiv: "//", ast.MatMult: "@", ast.LShift: "<<"}
        names |= {ast.RShift: ">>", ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^"}
        return names.get(type(node.op), type(node.op).__name__)

    def boolean(self, node: ast.BoolOp, depth: int) -> Typed:
        word = "and" if isinstance(node.op, ast.And) else "or"
        terms = [self.expect(self.expr(v, depth + 1), v, "bool", word) for v in node.values]
        return Typed("bool", runtime.all_of(terms) if word == "and" else runtime.any_of(terms))

    def call(self, node: ast.Call, depth: int) -> Typed:
        allowed = ", ".join(FUNCTIONS)
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            called = self.source.segment(node.func)
            raise self.source.error(
                node, f"{called!r} cannot be called; the functions are {allowed}"
            )
        function = FUNCTIONS[node.func.id]
        if node.keywords:
            raise self.source.error(node.keywords[0], "keyword arguments are not allowed")
        args = node.args
        for arg in args:
            if isinstance(arg, ast.Starred):
                raise self.source.error(arg, REFUSED[ast.Starred])
        count_ok = (
            len(args) >= function.min_args
            if function.variadic
            else len(args) == len(function.params)
        )
        if not count_ok:
            raise self.source.error(node, f"wrong number of arguments: {function.signature}")
        fns = []
        for index, arg in enumerate(args):
            typed = self.expr(arg, depth + 1)
            wanted = function.param(index)
            fns.append(
                typed.fn if wanted is None else self.expect(typed, arg, wanted, f"{node.func.id}()")
            )
        return Typed(function.returns, function.build(fns))
