"""Decision thresholds chosen on validation data by a written rule, stored with the model.

Rule:
- block: the lowest score whose validation precision (share of fraud among transactions scored
  at or above it) reaches `block_precision` (default 0.9), counting at least `MIN_FLAGGED`
  transactions; if no score reaches it, 1.0 (nothing is blocked automatically).
- review: the lowest score (at most block) at which the share of validation transactions in the
  review band, review <= score < block, stays within `review_budget` (default 1 %: the analysts'
  capacity; blocked transactions need no analyst).
"""

from __future__ import annotations

import numpy as np

from fraudsvc.model.bundle import ThresholdMeta

MIN_FLAGGED = 10


def choose_thresholds(
    scores: np.ndarray, labels: np.ndarray, block_precision: float, review_budget: float
) -> tuple[ThresholdMeta, dict[str, float]]:
    order = np.argsort(-scores, kind="stable")
    s = scores[order]
    y = labels[order].astype(np.float64)
    flagged = np.arange(1, s.size + 1)
    precision = np.cumsum(y) / flagged
    # a threshold equal to s[i] flags every row with score >= s[i]: use the last index of a tie
    last_of_tie = np.r_[s[1:] != s[:-1], True]

    ok = last_of_tie & (precision >= block_precision) & (flagged >= MIN_FLAGGED)
    block = float(s[np.flatnonzero(ok).max()]) if ok.any() else 1.0

    blocked = int((s >= block).sum())
    budget_rows = int(np.floor(review_budget * s.size))
    within = last_of_tie & (s <= block) & (flagged - blocked <= budget_rows)
    review = float(s[np.flatnonzero(within).max()]) if within.any() else block

    def stats(threshold: float) -> tuple[float, float, float]:
        hit = scores >= threshold
        tp = float(labels[hit].sum())
        return (
            tp / max(1, int(hit.sum())),
            tp / max(1.0, float(labels.sum())),
            float(hit.mean()),
        )

    block_p, block_r, block_rate = stats(block)
    flag_p, flag_r, flag_rate = stats(review)
    rule = (
        f"block: lowest validation score with precision >= {block_precision:g} "
        f"(at least {MIN_FLAGGED} flagged), else 1.0; review: lowest score <= block keeping "
        f"review <= score < block within {review_budget:.2%} of validation transactions"
    )
    report = {
        "valid_block_precision": block_p,
        "valid_block_recall": block_r,
        "valid_block_rate": block_rate,
        "valid_flagged_precision": flag_p,
        "valid_flagged_recall": flag_r,
        "valid_review_rate": flag_rate - block_rate,
    }
    return ThresholdMeta(review=review, block=block, rule=rule), report
