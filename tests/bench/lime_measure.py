"""The `lime` section's measurements: which vectors it explains and what it records of each
explanation.

Vectors: flagged transactions (review or block) and a few allowed ones, drawn as two disjoint
sets (one to choose the settings on, one to confirm the choice), from the predictions the load
stored when the http section ran, else from the batch features of the last 30 days (the same
vectors, by the parity test).

Every vector is explained with every seed under every variant by the service's own function
(`fraudsvc.explain.explain_vector`, without its stability seeds), one at a time in this
process with BLAS held to one thread as in the worker's LIME processes, the variants
interleaved vector by vector (their order rotated) so that a busy moment of the shared machine
hits them all alike. Recorded: LIME's local R², the top five features, their Jaccard index with
the top five of LightGBM's exact contributions (`pred_contrib`, by absolute value), how far the
local model's prediction is from the score at the transaction itself, wall and CPU time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import lightgbm as lgb
import numpy as np
import polars as pl

from fraudsvc.explain import TOP, explain_vector, top_features
from fraudsvc.explain_options import LimeOptions
from fraudsvc.features import batch_features, feature_matrix
from tests.bench.environment import Bench
from tests.bench.lime_rules import jaccard, mean_pairwise_jaccard


@dataclass(frozen=True)
class Vectors:
    rows: list[list[float]]
    flagged: list[bool]


@dataclass(frozen=True)
class Variant:
    axis: str
    label: str
    options: LimeOptions


@dataclass
class Measured:
    variant: Variant
    flagged: list[bool]
    r2: list[list[float]] = field(default_factory=list)
    """[seed][vector] LIME's local R²."""
    tops: list[list[frozenset[str]]] = field(default_factory=list)
    """[seed][vector] the top five features by absolute weight."""
    exact: list[list[float]] = field(default_factory=list)
    """[seed][vector] Jaccard of the top five with pred_contrib's top five."""
    gap: list[list[float]] = field(default_factory=list)
    """[seed][vector] |local prediction - score|, in probability (a log-odds local prediction
    through the logistic function): whether LIME's local model reproduces the score itself."""
    wall_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)

    def _vectors(self, flagged: bool | None) -> list[int]:
        return [v for v, f in enumerate(self.flagged) if flagged is None or f == flagged]

    def median_r2(self, flagged: bool | None = None) -> float:
        chosen = self._vectors(flagged)
        return statistics.median(r for per_seed in self.r2 for r in (per_seed[v] for v in chosen))

    def stability_per_vector(self) -> list[float]:
        """Mean pairwise Jaccard of each vector's top five across the seeds."""
        return [
            mean_pairwise_jaccard([per_seed[v] for per_seed in self.tops])
            for v in range(len(self.flagged))
        ]

    def stability(self, flagged: bool | None = None) -> float:
        per_vector = self.stability_per_vector()
        return statistics.fmean(per_vector[v] for v in self._vectors(flagged))

    def median_gap(self) -> float:
        return statistics.median(g for per_seed in self.gap for g in per_seed)

    def agreement_with_exact(self) -> float:
        return statistics.fmean(j for per_seed in self.exact for j in per_seed)

    def ms(self) -> float:
        """Median wall time per explanation."""
        return statistics.median(self.wall_ms)

    def cpu(self) -> float:
        """Median CPU time per explanation: what the rules use, since on a shared machine
        another's load stretches the wall time but not the CPU an explanation needs."""
        return statistics.median(self.cpu_ms)


def describe(o: LimeOptions) -> str:
    if o.discretizer == "none":
        how = "continuous, around the instance" if o.sample_around_instance else "continuous"
    else:
        how = o.discretizer
    target = "log-odds" if o.target == "log_odds" else "probability"
    return f"{how}; {target}; kernel {o.kernel_width_factor:g}; {o.num_samples:,} samples"


# --------------------------------------------------------------------------- vectors


async def _stored(database_url: str, version: str, n: int, allowed: int) -> list[Vectors]:
    connection = await asyncpg.connect(database_url)
    try:
        sets = []
        for flagged, count in ((True, 2 * n), (False, 2 * allowed)):
            rows = await connection.fetch(
                "SELECT features FROM predictions WHERE model_version = $1 "
                "AND (decision <> 'allow') = $2 ORDER BY transaction_id LIMIT $3",
                version,
                flagged,
                count,
            )
            sets.append([list(map(float, r["features"])) for r in rows])
    finally:
        await connection.close()
    flagged_rows, allowed_rows = sets
    half_f, half_a = len(flagged_rows) // 2, len(allowed_rows) // 2
    return [
        Vectors(f + a, [True] * len(f) + [False] * len(a))
        for f, a in (
            (flagged_rows[:half_f], allowed_rows[:half_a]),
            (flagged_rows[half_f:], allowed_rows[half_a:]),
        )
    ]


async def flagged_share(database_url: str, version: str) -> float:
    connection = await asyncpg.connect(database_url)
    try:
        share = await connection.fetchval(
            "SELECT avg((decision <> 'allow')::int) FROM predictions WHERE model_version = $1",
            version,
        )
    finally:
        await connection.close()
    return float(share or 0.0)


def _batch(bench: Bench, n: int, allowed: int) -> tuple[list[Vectors], float]:
    featured = batch_features(bench.frame)
    recent = featured.filter(pl.col("timestamp") > bench.history_end - pl.duration(days=30))
    matrix = feature_matrix(recent)
    booster = lgb.Booster(model_file=str(bench.model.path / "model.lgb"))
    scores = np.asarray(booster.predict(matrix, num_threads=1))
    rng = np.random.default_rng(7)
    flagged = rng.permutation(np.flatnonzero(scores >= bench.model.review))[: 2 * n]
    passed = rng.permutation(np.flatnonzero(scores < bench.model.review))[: 2 * allowed]
    sets = []
    for f, a in (
        (flagged[: len(flagged) // 2], passed[:allowed]),
        (flagged[len(flagged) // 2 :], passed[allowed:]),
    ):
        rows = [list(map(float, matrix[i])) for i in [*f, *a]]
        sets.append(Vectors(rows, [True] * len(f) + [False] * len(a)))
    return sets, float(np.mean(scores >= bench.model.review))


def vectors(bench: Bench, n: int, allowed: int) -> tuple[list[Vectors], float, str]:
    """Two disjoint sets (study, confirmation) of about n flagged and `allowed` allowed vectors
    each, the flagged share of scored transactions, and where they come from."""
    if bench.has_web:
        sets = asyncio.run(_stored(bench.database_url, bench.model.version, n, allowed))
        if all(sum(s.flagged) >= min(n, 5) for s in sets):
            share = asyncio.run(flagged_share(bench.database_url, bench.model.version))
            return sets, share, "predictions stored by the load"
    sets, share = _batch(bench, n, allowed)
    return sets, share, "rows of the batch features of the last 30 days"


# --------------------------------------------------------------------------- measuring


def probability_gap(result: dict[str, Any]) -> float:
    """|local prediction - score| in probability units, whatever the target."""
    local = float(result["local_prediction"])
    if result["target"] == "log_odds":
        local = 1.0 / (1.0 + math.exp(-max(-700.0, min(700.0, local))))
    return abs(min(1.0, max(0.0, local)) - float(result["score"]))


def exact_tops(model_dir: str, names: list[str], rows: list[list[float]]) -> list[frozenset[str]]:
    """The top five features of LightGBM's exact contributions, by absolute value."""
    booster = lgb.Booster(model_file=f"{model_dir}/model.lgb")
    contributions = np.asarray(booster.predict(np.asarray(rows), pred_contrib=True, num_threads=1))
    return [  # the last column is the expected value, not a feature
        frozenset(names[j] for j in np.argsort(-np.abs(c[:-1]))[:TOP]) for c in contributions
    ]


def measure(
    model_dir: str,
    names: list[str],
    vecs: Vectors,
    variants: list[Variant],
    seeds: list[int],
) -> dict[str, Measured]:
    """Every vector with every seed under every variant (without stability seeds)."""
    exact = exact_tops(model_dir, names, vecs.rows)
    out = {v.label: Measured(v, vecs.flagged) for v in variants}
    plain = {v.label: dataclasses.replace(v.options, stability_seeds=0) for v in variants}
    for options in plain.values():  # build each explainer before timing it
        explain_vector(model_dir, vecs.rows[0], options, seeds[0])
    for seed in seeds:
        for m in out.values():
            m.r2.append([])
            m.tops.append([])
            m.exact.append([])
            m.gap.append([])
        for i, row in enumerate(vecs.rows):
            turn = i % len(variants)
            for variant in variants[turn:] + variants[:turn]:
                m = out[variant.label]
                wall, cpu = time.perf_counter(), time.process_time()
                result = explain_vector(model_dir, row, plain[variant.label], seed)
                m.wall_ms.append(1000 * (time.perf_counter() - wall))
                m.cpu_ms.append(1000 * (time.process_time() - cpu))
                m.r2[-1].append(float(result["local_fit_r2"]))
                m.tops[-1].append(top_features(result["weights"]))
                m.exact[-1].append(jaccard(m.tops[-1][-1], exact[i]))
                m.gap[-1].append(probability_gap(result))
    return out
