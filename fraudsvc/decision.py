"""Score + thresholds -> decision."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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


def decide(score: float, thresholds: Thresholds) -> Decision:
    if score >= thresholds.block:
        return "block"
    if score >= thresholds.review:
        return "review"
    return "allow"
