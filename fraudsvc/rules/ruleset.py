"""A ruleset: rules with an id, an action and a mode, compiled together, evaluated together.

Every rule of a ruleset, live and shadow, is evaluated on every transaction; each one that fires
(or fails) is a `Hit` with the values it read. Shadow hits are recorded and counted but never
decide. How hits and the model's decision combine is `fraudsvc.decision.combine`.

The context a rule sees is built once per transaction by `context_of`: the contract's fields,
the attributes map, every feature of the model's vector by name (NaN is missing), the score and
the model's own decision.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec

from fraudsvc.rules.language import CompiledRule, ListLookup, RuleError, compile_rule
from fraudsvc.rules.schema import ListKind, Schema
from fraudsvc.transaction import Transaction

Action = Literal["allow", "review", "block"]
Mode = Literal["live", "shadow"]
RULE_ID_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
MAX_RULES = 1000


class RuleSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A rule as submitted and stored."""

    id: Annotated[
        str,
        msgspec.Meta(
            pattern=RULE_ID_PATTERN,
            description="1-64 characters: a lower-case letter, then lower-case letters, "
            "digits or _",
            examples=["big_amount"],
        ),
    ]
    expression: Annotated[
        str,
        msgspec.Meta(
            min_length=1,
            max_length=4000,
            description="the condition, in the rule language (see the README)",
            examples=["amount > 5000"],
        ),
    ]
    action: Annotated[Action, msgspec.Meta(description="what the rule decides when it fires")]
    mode: Annotated[
        Mode, msgspec.Meta(description="live rules decide; shadow rules are only recorded")
    ] = "live"
    description: Annotated[str, msgspec.Meta(max_length=1000)] = ""


@dataclass(frozen=True)
class Problem:
    """Why a rule was refused: the rule, the message and where in its expression."""

    rule: str
    message: str
    column: int | None


class RulesetRefused(ValueError):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"rule {p.rule}: {p.message}" for p in problems))


@dataclass(frozen=True)
class Compiled:
    spec: RuleSpec
    rule: CompiledRule


@dataclass(frozen=True)
class Ruleset:
    """A compiled ruleset version, ready to evaluate (immutable, shared by requests)."""

    version: int
    rules: tuple[Compiled, ...]

    @property
    def lists(self) -> frozenset[str]:
        return frozenset().union(*(c.rule.lists for c in self.rules))


EMPTY = Ruleset(version=0, rules=())


def compile_ruleset(
    version: int,
    specs: Sequence[RuleSpec],
    schema: Schema,
    list_kinds: Mapping[str, ListKind],
) -> Ruleset:
    """Compile every rule; RulesetRefused lists every rule that cannot be (and duplicate ids)."""
    problems: list[Problem] = []
    if len(specs) > MAX_RULES:
        problems.append(Problem("*", f"a ruleset holds at most {MAX_RULES} rules", None))
    seen: set[str] = set()
    compiled: list[Compiled] = []
    for spec in specs:
        if spec.id in seen:
            problems.append(Problem(spec.id, "two rules have this id", None))
        seen.add(spec.id)
        try:
            compiled.append(Compiled(spec, compile_rule(spec.expression, schema, list_kinds)))
        except RuleError as error:
            problems.append(Problem(spec.id, str(error), error.column))
    if problems:
        raise RulesetRefused(problems)
    return Ruleset(version, tuple(compiled))


class Hit(msgspec.Struct, frozen=True):
    """A rule that fired, or failed, on one transaction, and what it read."""

    id: str
    action: Action
    mode: Mode
    status: Literal["fired", "error"]
    values: dict[str, Any]
    """The values of the names and attributes the rule reads; list look-ups as `@list[value]`."""
    error: str | None = None


def evaluate(ruleset: Ruleset, context: Mapping[str, object], lists: ListLookup) -> list[Hit]:
    """Every rule of the ruleset, in order; the hits (fired or failed)."""
    hits: list[Hit] = []
    for c in ruleset.rules:
        outcome = c.rule.evaluate(context, lists)
        if outcome.status == "not_fired":
            continue
        values = dict(outcome.values)
        for m in outcome.memberships:
            values[f"@{m.list}[{m.value}]"] = m.member
        hits.append(
            Hit(
                id=c.spec.id,
                action=c.spec.action,
                mode=c.spec.mode,
                status="fired" if outcome.status == "fired" else "error",
                values=values,
                error=outcome.error,
            )
        )
    return hits


FIELDS = (
    "transaction_id",
    "customer_id",
    "terminal_id",
    "currency",
    "merchant_category",
    "merchant_country",
    "card_country",
    "channel",
    "device_id",
    "ip",
)


def context_of(
    tx: Transaction,
    names: Sequence[str],
    vector: Sequence[float],
    score: float,
    model_decision: str,
) -> dict[str, object]:
    """What a rule sees of one scored transaction."""
    context: dict[str, object] = {name: getattr(tx, name) for name in FIELDS}
    for name, value in zip(names, vector, strict=True):
        context.setdefault(name, None if math.isnan(value) else value)
    context["amount"] = tx.amount
    context["attributes"] = tx.attributes or {}
    context["score"] = score
    context["model_decision"] = model_decision
    return context
