"""The rules by which the `lime` section chooses LIME's settings from its measures (pure code).

- Quality of a setting: the mean of its median local R² (fidelity: how much of the model's
  behaviour near the transaction LIME's linear model captures) and its top-5 agreement across
  seeds (stability: whether another seed would show the same five features). Both are what an
  analyst relies on; agreement with LightGBM's exact contributions is reported, not optimised:
  the two methods answer different questions, and the exact ones are shown anyway (`reasons`).
- Discretizer, sampling, target and kernel width: the value of best quality on its axis, when it
  beats the base's value by at least MIN_GAIN (smaller differences are within the noise of a
  few dozen vectors: the base's value stays).
- num_samples: more samples are worth it while each doubling of the time per explanation buys
  at least GAIN_PER_DOUBLING of stability, among the sizes one LIME process can afford.
- Stability seeds k: the fewest extra seeds whose estimate of an explanation's stability is
  within MAX_ERROR (mean absolute error) of the estimate from many seeds, if the explanation with
  its k extra runs still fits the budget (else the affordable k that estimates best; 0, off,
  when not even one extra run fits).
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence

GAIN_PER_DOUBLING = 0.1
SCORING_RATE = 300.0
BUSY_AT_MOST = 0.5
MAX_ERROR = 0.1
MIN_GAIN = 0.01


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    union = a | b
    return len(a & b) / len(union) if union else 1.0


def mean_pairwise_jaccard(sets: Sequence[frozenset[str]]) -> float:
    pairs = list(itertools.combinations(sets, 2))
    return statistics.fmean(jaccard(a, b) for a, b in pairs) if pairs else 1.0


def quality(median_r2: float, stability: float) -> float:
    return (median_r2 + stability) / 2


def best(qualities: dict[str, float], base: str, min_gain: float = MIN_GAIN) -> str:
    """The label of the best quality if it beats the base's by `min_gain`, else the base."""
    top = max(qualities, key=lambda label: qualities[label])
    return top if qualities[top] >= qualities[base] + min_gain else base


def budget_ms(
    flagged_share: float, rate: float = SCORING_RATE, busy: float = BUSY_AT_MOST
) -> float:
    """Milliseconds an explanation may cost for one process to keep up with the flagged
    transactions of `rate` requests/s while at most `busy` of its time goes to them."""
    if flagged_share <= 0:
        return float("inf")
    return 1000.0 * busy / (rate * flagged_share)


def recommend(
    stability: dict[int, float],
    cost_ms: dict[int, float],
    budget: float,
    gain: float = GAIN_PER_DOUBLING,
) -> int:
    """The smallest affordable size from which no larger affordable size gains `gain` of
    stability per doubling of the cost; the cheapest size when none is affordable."""
    affordable = sorted(n for n in stability if cost_ms[n] <= budget)
    if not affordable:
        return min(stability, key=lambda n: cost_ms[n])
    for n in affordable:
        worth_more = any(
            stability[m] - stability[n] >= gain * math.log2(cost_ms[m] / cost_ms[n])
            for m in affordable
            if m > n and cost_ms[m] > cost_ms[n]
        )
        if not worth_more:
            return n
    return affordable[-1]


def seed_estimates(
    tops: Sequence[Sequence[frozenset[str]]], k: int, reference_from: int
) -> tuple[list[float], list[float]]:
    """Per vector: the stability estimated from the first k extra seeds, and the reference from
    the seeds from `reference_from` on. `tops[s][v]` is seed s's top features of vector v; seed
    0 is the explanation shown, compared with the others."""
    estimates, references = [], []
    for v in range(len(tops[0])):
        shown = tops[0][v]
        estimates.append(statistics.fmean(jaccard(shown, tops[s][v]) for s in range(1, k + 1)))
        references.append(
            statistics.fmean(jaccard(shown, tops[s][v]) for s in range(reference_from, len(tops)))
        )
    return estimates, references


def mean_abs_error(estimates: Sequence[float], references: Sequence[float]) -> float:
    return statistics.fmean(abs(e - r) for e, r in zip(estimates, references, strict=True))


def choose_k(errors: dict[int, float], cost_ms: float, budget: float) -> int:
    """The fewest extra seeds estimating within MAX_ERROR whose total cost fits the budget;
    when none estimates that well, the affordable k of the smallest error; 0 when no k is
    affordable."""
    affordable = sorted(k for k in errors if (1 + k) * cost_ms <= budget)
    if not affordable:
        return 0
    good = [k for k in affordable if errors[k] <= MAX_ERROR]
    return good[0] if good else min(affordable, key=lambda k: errors[k])
