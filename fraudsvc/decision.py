"""Score + thresholds -> the model's decision; the model's decision + rule hits -> the final one.

Precedence of the live rules that fired (shadow rules never decide; a rule that failed never
decides), documented in the README:

1. a live `block` rule blocks, whatever the model and the other rules say: a block list of
   stolen cards must not be undone by another rule;
2. else a live `allow` rule allows, whatever the model says: the analysts' answer to the model's
   false positives (a customer who keeps being flagged);
3. else a live `review` rule sends to review, unless the model blocks: review rules escalate;
4. else the model decides.

When rules of one action fire together, the first in the ruleset's order is named.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

Decision = Literal["allow", "review", "block"]
DECISIONS: tuple[Decision, ...] = ("allow", "review", "block")


@dataclass(frozen=True)
class Thresholds:
    """Scores at or above `review` are reviewed, at or above `block` blocked."""

    review: float
    block: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.review <= self.block <= 1.0:
            raise ValueError(f"thresholds need 0 <= review <= block <= 1, got {self}")


class RuleHit(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def mode(self) -> str: ...
    @property
    def status(self) -> str: ...


def combine(model: Decision, hits: Sequence[RuleHit]) -> tuple[Decision, str]:
    """The final decision and who decided it ('model' or the deciding rule's id)."""
    live = [h for h in hits if h.mode == "live" and h.status == "fired"]
    for action in ("block", "allow"):
        first = next((h for h in live if h.action == action), None)
        if first is not None:
            return action, first.id
    review = next((h for h in live if h.action == "review"), None)
    if review is not None and model != "block":
        return "review", review.id
    return model, "model"


def decide(score: float, thresholds: Thresholds) -> Decision:
    if score >= thresholds.block:
        return "block"
    if score >= thresholds.review:
        return "review"
    return "allow"
