"""Section `lime`: how many perturbation samples LIME needs, as stability against cost.

Every vector is explained with several seeds at every num_samples by the worker's own function
(`fraudsvc.explain.explain_vector`: the registered model's booster and background sample, the
service's num_features), in this process, one at a time, the sizes interleaved vector by vector
so that a busy moment of the shared machine hits them all alike.

- Stability: agreement of the top features (by absolute weight) between seeds, as the mean
  pairwise Jaccard index over the seeds, averaged over the vectors; top-5 as asked, top-3 beside.
- Cost: wall time per explanation, which is how long a LIME process is busy with it, and CPU
  time of this process (all threads), as the worker runs LIME today (numpy's OpenBLAS with its
  default thread count); then the first vectors again, with one seed, as a block with BLAS held
  to one thread, which is what one LIME process per core is meant to use.
- Recommendation: more samples are worth it while each doubling of the time per explanation
  buys at least GAIN_PER_DOUBLING of top-5 Jaccard, among the sizes a LIME process can afford:
  explaining the flagged share of 300 requests/s at most half busy. The chosen size is the
  smallest from which no larger affordable size gains that much per doubling.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import asyncpg
import numpy as np
import polars as pl

from fraudsvc.explain import explain_vector
from fraudsvc.features import batch_features, feature_matrix
from tests.bench.environment import Bench
from tests.bench.report import Figure, Report

SECTION = "lime: num_samples, stability against time"
TOP = 5
TOP_SMALL = 3
SCORING_RATE = 300.0
BUSY_AT_MOST = 0.5
GAIN_PER_DOUBLING = 0.1
BLAS_VECTORS = 10


@dataclass
class Setting:
    num_samples: int
    seconds: list[list[float]] = field(default_factory=list)
    """[seed][vector] wall seconds per explanation."""
    cpu_seconds: list[list[float]] = field(default_factory=list)
    """[seed][vector] CPU seconds of this process (all threads) per explanation."""
    predict_seconds: list[list[float]] = field(default_factory=list)
    ranked: list[list[list[str]]] = field(default_factory=list)
    """[seed][vector] the reported features, largest absolute weight first."""
    r2: list[float] = field(default_factory=list)

    def cpu_means(self) -> list[float]:
        """Mean CPU seconds per explanation, one value per seed (a run)."""
        return [statistics.fmean(per_seed) for per_seed in self.cpu_seconds]

    def wall_means(self) -> list[float]:
        return [statistics.fmean(per_seed) for per_seed in self.seconds]

    def tops(self, k: int) -> list[list[frozenset[str]]]:
        return [[frozenset(names[:k]) for names in per_seed] for per_seed in self.ranked]

    def stability(self, k: int = TOP) -> list[float]:
        """Per vector: mean pairwise Jaccard of its top-k features across seeds."""
        tops = self.tops(k)
        return [
            mean_pairwise_jaccard([tops[s][v] for s in range(len(tops))])
            for v in range(len(tops[0]))
        ]

    def top1_share(self) -> float:
        vectors = range(len(self.ranked[0]))
        same = sum(1 for v in vectors if len({per_seed[v][0] for per_seed in self.ranked}) == 1)
        return same / len(vectors)

    def predict_share(self) -> float:
        total = sum(map(sum, self.seconds))
        return sum(map(sum, self.predict_seconds)) / total if total else float("nan")


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    union = a | b
    return len(a & b) / len(union) if union else 1.0


def mean_pairwise_jaccard(sets: list[frozenset[str]]) -> float:
    pairs = list(itertools.combinations(sets, 2))
    return statistics.fmean(jaccard(a, b) for a, b in pairs) if pairs else 1.0


def budget_ms(
    flagged_share: float, rate: float = SCORING_RATE, busy: float = BUSY_AT_MOST
) -> float:
    """CPU milliseconds an explanation may cost for one process to keep up with the flagged
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


@contextmanager
def one_blas_thread() -> Iterator[None]:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


def measure(
    model_dir: str, vecs: list[list[float]], sizes: tuple[int, ...], seeds: list[int], k: int
) -> dict[int, Setting]:
    """Every vector with every seed at every size, the sizes interleaved (their order rotated
    vector by vector)."""
    settings = {n: Setting(n) for n in sizes}
    for seed in seeds:
        for s in settings.values():
            s.seconds.append([])
            s.cpu_seconds.append([])
            s.predict_seconds.append([])
            s.ranked.append([])
        for v, vector in enumerate(vecs):
            order = sizes[v % len(sizes) :] + sizes[: v % len(sizes)]
            for n in order:
                s = settings[n]
                wall, cpu = time.perf_counter(), time.process_time()
                result = explain_vector(model_dir, vector, n, k, seed)
                s.seconds[-1].append(time.perf_counter() - wall)
                s.cpu_seconds[-1].append(time.process_time() - cpu)
                s.predict_seconds[-1].append(float(result["predict_seconds"]))
                s.ranked[-1].append([str(w["feature"]) for w in result["weights"]])
                s.r2.append(float(result["local_fit_r2"]))
    return settings


# --------------------------------------------------------------------------- vectors


async def _stored(database_url: str, version: str, n: int) -> tuple[list[list[float]], float]:
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT features FROM predictions WHERE decision <> 'allow' AND model_version = $1 "
            "ORDER BY transaction_id LIMIT $2",
            version,
            n,
        )
        share = await connection.fetchval(
            "SELECT avg((decision <> 'allow')::int) FROM predictions WHERE model_version = $1",
            version,
        )
    finally:
        await connection.close()
    return [list(map(float, r["features"])) for r in rows], float(share or 0.0)


def _batch(bench: Bench, n: int) -> tuple[list[list[float]], float]:
    """Flagged rows of the last 30 days by the batch features (the same vectors the service
    stores, by the parity test), when no stored predictions exist in this run."""
    import lightgbm as lgb

    featured = batch_features(bench.frame)
    recent = featured.filter(pl.col("timestamp") > bench.history_end - pl.duration(days=30))
    matrix = feature_matrix(recent)
    booster = lgb.Booster(model_file=str(bench.model.path / "model.lgb"))
    scores = np.asarray(booster.predict(matrix, num_threads=1))
    flagged = np.flatnonzero(scores >= bench.model.review)
    chosen = np.random.default_rng(7).choice(flagged, size=min(n, flagged.size), replace=False)
    return [list(map(float, matrix[i])) for i in sorted(chosen)], flagged.size / scores.size


def vectors(bench: Bench, n: int) -> tuple[list[list[float]], float, str]:
    """Flagged vectors, the flagged share of scored transactions, and where both come from."""
    if bench.has_web:
        stored, share = asyncio.run(_stored(bench.database_url, bench.model.version, n))
        if len(stored) >= min(n, 5):
            return stored, share, "flagged predictions stored by the load (review or block)"
    vecs, share = _batch(bench, n)
    return vecs, share, "flagged rows of the batch features (no stored prediction in this run)"


# --------------------------------------------------------------------------- section


def run(bench: Bench, report: Report) -> None:
    plan = bench.plan
    es = bench.settings.explain
    vecs, flagged_share, source = vectors(bench, plan.lime_vectors)
    if len(vecs) < 2:
        report.note(SECTION, "Too few flagged vectors to measure LIME's stability.")
        return
    model_dir = str(bench.model.path)
    seeds = [es.seed + i for i in range(plan.lime_seeds)]
    sizes = plan.lime_samples
    explain_vector(model_dir, vecs[0], min(sizes), es.num_features, es.seed)  # load, warm up
    started = time.perf_counter()
    settings = measure(model_dir, vecs, sizes, seeds, es.num_features)
    subset = vecs[:BLAS_VECTORS]
    with one_blas_thread():  # entered once: toggling it per call re-creates BLAS's threads
        single = measure(model_dir, subset, sizes, seeds[:1], es.num_features)
    print(f"    {len(vecs)} vectors x {len(seeds)} seeds x {len(sizes)} sizes "
          f"in {time.perf_counter() - started:.0f} s", flush=True)  # fmt: skip

    wall = {n: 1000 * statistics.median(s.wall_means()) for n, s in settings.items()}
    cpu = {n: 1000 * statistics.median(s.cpu_means()) for n, s in settings.items()}
    shipped_subset = {
        n: 1000 * statistics.fmean(s.cpu_seconds[0][: len(subset)]) for n, s in settings.items()
    }
    one_thread = {n: 1000 * statistics.fmean(s.cpu_seconds[0]) for n, s in single.items()}
    stability = {n: statistics.fmean(s.stability(TOP)) for n, s in settings.items()}
    budget = budget_ms(flagged_share)
    chosen = recommend(stability, wall, budget)
    reference = settings[max(sizes)]
    rows = []
    for n, s in settings.items():
        report.add(
            SECTION,
            Figure(
                f"num_samples {n}: time per explanation",
                "ms",
                [1000 * m for m in s.wall_means()],
                f"wall, one run per seed (mean over {len(vecs)} vectors); CPU {cpu[n]:.1f} ms; "
                f"top-{TOP} Jaccard {stability[n]:.3f}",
            ),
        )
        vs_reference = statistics.fmean(
            jaccard(a, b)
            for mine, ref in zip(s.tops(TOP), reference.tops(TOP), strict=True)
            for a, b in zip(mine, ref, strict=True)
        )
        rows.append(
            [
                f"{n:,}"
                + (" (current)" if n == es.num_samples else "")
                + (" **recommended**" if n == chosen else ""),
                f"{wall[n]:.1f}",
                f"{1000 / wall[n]:.0f}" if wall[n] > 0 else "n/a",
                f"{cpu[n]:.1f}",
                f"{one_thread[n]:.1f} (as shipped {shipped_subset[n]:.1f})",
                f"{100 * s.predict_share():.0f} %",
                f"{stability[n]:.3f}",
                f"{min(s.stability(TOP)):.2f}",
                f"{statistics.fmean(s.stability(TOP_SMALL)):.3f}",
                f"{100 * s.top1_share():.0f} %",
                f"{vs_reference:.3f}",
                f"{statistics.median(s.r2):.3f}",
            ]
        )
    report.table(
        SECTION,
        f"LIME: top-{TOP} agreement across {len(seeds)} seeds against cost ({len(vecs)} vectors)",
        [
            "num_samples",
            "ms / explanation (wall)",
            "explanations/s per process",
            "CPU ms (all threads)",
            f"CPU ms, 1 BLAS thread ({len(subset)} vectors)",
            "in model predictions",
            f"top-{TOP} Jaccard across seeds",
            "worst vector",
            f"top-{TOP_SMALL} Jaccard",
            "same top-1 in all seeds",
            f"top-{TOP} Jaccard vs {max(sizes):,}",
            "local fit R² (median)",
        ],
        rows,
        f"Vectors: {source}; model {bench.model.name} v{bench.model.version}. Explanations by "
        f"fraudsvc.explain.explain_vector (num_features {es.num_features}, seeds "
        f"{seeds[0]}..{seeds[-1]}), one at a time in the benchmark's process, the sizes "
        "interleaved. Wall and CPU: medians over the seeds of the mean per vector, as the "
        "worker runs LIME today (numpy's OpenBLAS with its default threads). '1 BLAS thread': "
        f"the first {len(subset)} vectors with the first seed, run again as a block under "
        "threadpoolctl's limit, beside the same explanations as shipped. "
        f"'vs {max(sizes):,}': each seed's top-{TOP} against the same seed's with the most "
        "samples.",
    )
    report.data["lime"] = {
        "source": source,
        "vectors": len(vecs),
        "seeds": seeds,
        "num_features": es.num_features,
        "flagged_share": flagged_share,
        "budget_ms": budget,
        "recommended": chosen,
        "settings": {
            str(n): {
                "cpu_seconds": s.cpu_seconds,
                "wall_seconds": s.seconds,
                "predict_seconds": s.predict_seconds,
                "one_blas_thread_cpu_seconds": single[n].cpu_seconds,
                "stability_top5_per_vector": s.stability(TOP),
                "stability_top3_per_vector": s.stability(TOP_SMALL),
                "ranked": s.ranked,
            }
            for n, s in settings.items()
        },
    }
    small = {n: statistics.fmean(s.stability(TOP_SMALL)) for n, s in settings.items()}
    _recommendation_note(
        report, es.num_samples, chosen, stability, small, wall, budget, flagged_share
    )
    heavy = [n for n in sizes if one_thread[n] > 0 and shipped_subset[n] / one_thread[n] > 1.3]
    if heavy:
        shipped_wall = {
            n: 1000 * statistics.fmean(s.seconds[0][: len(subset)]) for n, s in settings.items()
        }
        one_wall = {n: 1000 * statistics.fmean(s.seconds[0]) for n, s in single.items()}
        report.note(
            SECTION,
            "BLAS threads: as shipped, an explanation takes "
            + ", ".join(f"{shipped_subset[n] / one_thread[n]:.1f}x" for n in heavy)
            + " the CPU of the same explanation with BLAS held to one thread (num_samples "
            + ", ".join(f"{n:,}" for n in heavy)
            + "), for a wall time of "
            + ", ".join(f"{shipped_wall[n]:.0f} against {one_wall[n]:.0f} ms" for n in heavy)
            + ": numpy's OpenBLAS runs a thread per core, and its second thread spins beside "
            "the LIME process instead of making it faster. See the explain section's what-if.",
        )


def _recommendation_note(
    report: Report,
    current: int,
    chosen: int,
    stability: dict[int, float],
    small: dict[int, float],
    wall: dict[int, float],
    budget: float,
    flagged_share: float,
) -> None:
    verdict = f"keep {current:,}" if chosen == current else f"use {chosen:,} instead of {current:,}"
    text = (
        f"Recommendation: {verdict} (FRAUDSVC_LIME_NUM_SAMPLES). Rule: more samples are worth "
        f"it while each doubling of the time per explanation buys at least "
        f"{GAIN_PER_DOUBLING:g} of top-{TOP} Jaccard, among the sizes one LIME process can "
        f"afford: the flagged share here is {100 * flagged_share:.2f} %, so "
        f"{SCORING_RATE:g} requests/s bring {SCORING_RATE * flagged_share:.1f} explanations/s, "
        f"and the process stays at most {100 * BUSY_AT_MOST:.0f} % busy up to {budget:.0f} ms "
        f"per explanation. {chosen:,} samples: Jaccard {stability[chosen]:.3f} at "
        f"{wall[chosen]:.0f} ms"
    )
    larger = [n for n in stability if n > chosen]
    for n in larger:
        doublings = math.log2(wall[n] / wall[chosen]) if wall[n] > wall[chosen] else math.nan
        text += (
            f"; {n:,}: {stability[n]:.3f} at {wall[n]:.0f} ms "
            f"({(stability[n] - stability[chosen]) / doublings:+.3f} per doubling)"
            if doublings == doublings  # not NaN
            else f"; {n:,}: {stability[n]:.3f} at {wall[n]:.0f} ms"
        )
    top = max(stability, key=lambda n: stability[n])
    if stability[top] < 0.9:
        text += (
            f". No size tried makes the top {TOP} stable (the best, {top:,}, reaches "
            f"{stability[top]:.3f})"
        )
        if small[chosen] > stability[chosen] + 0.05:
            text += (
                f"; the first {TOP_SMALL} features agree more often ({small[chosen]:.3f} at "
                f"{chosen:,})"
            )
        text += (
            ". The request path's `reasons` (LightGBM's exact per-feature contributions) do "
            "not depend on a seed at all"
        )
    report.note(SECTION, text + ".")
