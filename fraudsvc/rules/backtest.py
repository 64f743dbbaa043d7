"""Backtest: a ruleset over stored history, judged by the labels.

Each stored scored transaction is replayed with its stored features, score and model decision
(never recomputed: the backtest asks what the rules would have done to what was seen), through
every rule and the precedence of `fraudsvc.decision.combine`, with the lists as they are now,
bound to the transaction's own time for expiry. Per rule and for the whole ruleset it reports
hits, precision and recall against the labels (a transaction without a fraud label counts as
genuine), the fraud amount caught and the genuine amount blocked, and how many final decisions
would differ from the ones made live.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from fraudsvc.decision import combine
from fraudsvc.rules.lists import ListSnapshot
from fraudsvc.rules.ruleset import Ruleset, context_of, evaluate
from fraudsvc.transaction import Transaction, minor_to_amount


class Replayed(Protocol):
    """A stored scored transaction (`fraudsvc.db.rulesets.Scored`)."""

    @property
    def transaction(self) -> Transaction: ...
    @property
    def names(self) -> list[str] | None: ...
    @property
    def features(self) -> list[float]: ...
    @property
    def score(self) -> float: ...
    @property
    def model_decision(self) -> str: ...
    @property
    def decision(self) -> str: ...
    @property
    def is_fraud(self) -> bool: ...


@dataclass
class RuleTally:
    id: str
    action: str
    mode: str
    hits: int = 0
    errors: int = 0
    frauds: int = 0
    fraud_minor: int = 0
    genuine_minor: int = 0

    def precision(self) -> float | None:
        return self.frauds / self.hits if self.hits else None

    def recall(self, frauds: int) -> float | None:
        return self.frauds / frauds if frauds else None


@dataclass
class Tally:
    """The running counts of one backtest."""

    rules: dict[str, RuleTally]
    transactions: int = 0
    frauds: int = 0
    fraud_minor: int = 0
    unreadable: int = 0
    """Stored vectors whose declaration is unknown (their features are missing to the rules)."""
    decisions: Counter[str] = field(default_factory=Counter)
    changed: Counter[tuple[str, str]] = field(default_factory=Counter)
    flagged: int = 0
    flagged_frauds: int = 0
    caught_minor: int = 0
    blocked_genuine_minor: int = 0
    seconds: float = 0.0


def new_tally(ruleset: Ruleset) -> Tally:
    return Tally(
        rules={c.spec.id: RuleTally(c.spec.id, c.spec.action, c.spec.mode) for c in ruleset.rules}
    )


def replay(tally: Tally, ruleset: Ruleset, lists: ListSnapshot, rows: Iterable[Replayed]) -> Tally:
    """Add a batch of stored transactions to the tally (CPU only: run it off the event loop)."""
    started = time.perf_counter()
    for r in rows:
        tx = r.transaction
        minor = tx.amount_minor
        names = r.names or []
        vector = r.features if r.names is not None else []
        if r.names is None:
            tally.unreadable += 1
        context = context_of(tx, names, vector, r.score, r.model_decision)
        hits = evaluate(ruleset, context, lists.at(tx.timestamp))
        final, _ = combine(r.model_decision, hits)  # type: ignore[arg-type]
        tally.transactions += 1
        tally.decisions[final] += 1
        if final != r.decision:
            tally.changed[(r.decision, final)] += 1
        if r.is_fraud:
            tally.frauds += 1
            tally.fraud_minor += minor
        if final != "allow":
            tally.flagged += 1
            if r.is_fraud:
                tally.flagged_frauds += 1
                tally.caught_minor += minor
        if final == "block" and not r.is_fraud:
            tally.blocked_genuine_minor += minor
        for hit in hits:
            rule = tally.rules[hit.id]
            if hit.status == "error":
                rule.errors += 1
                continue
            rule.hits += 1
            if r.is_fraud:
                rule.frauds += 1
                rule.fraud_minor += minor
            else:
                rule.genuine_minor += minor
    tally.seconds += time.perf_counter() - started
    return tally


def amount(minor: int) -> float:
    return minor_to_amount(minor)
