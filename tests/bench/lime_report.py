"""The `lime` section's tables, notes and raw data, from a finished study."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from fraudsvc.explain import TOP
from fraudsvc.explain_options import LimeOptions
from tests.bench.lime_measure import Measured, Variant, Vectors, describe
from tests.bench.lime_rules import (
    BUSY_AT_MOST,
    GAIN_PER_DOUBLING,
    MAX_ERROR,
    MIN_GAIN,
    SCORING_RATE,
    quality,
)
from tests.bench.report import Report


@dataclass(frozen=True)
class Study:
    source: str
    model: str
    study: Vectors
    confirm: Vectors
    seeds: list[int]
    k_seeds: list[int]
    rounds: list[tuple[LimeOptions, list[Variant]]]
    measured: dict[LimeOptions, Measured]
    shipped: LimeOptions
    final: LimeOptions
    current: LimeOptions
    """The service's defaults in this commit (LimeOptions())."""
    budget_ms: float
    flagged_share: float
    errors: dict[int, float]
    confirmed: dict[str, Measured]
    confirmed_smote: dict[str, Measured]
    smote_note: str


def _row(m: Measured) -> list[str]:
    return [
        f"{m.median_r2():.3f}",
        f"{m.stability():.3f}",
        f"{m.agreement_with_exact():.3f}",
        f"{m.median_gap():.3f}",
        f"{m.ms():.1f}",
        f"{m.cpu():.1f}",
        f"{quality(m.median_r2(), m.stability()):.3f}",
    ]


def write(report: Report, section: str, s: Study) -> None:
    n_f, n_a = sum(s.study.flagged), len(s.study.flagged) - sum(s.study.flagged)
    rows = []
    for number, (base, variants) in enumerate(s.rounds, start=1):
        for v in variants:
            label = v.label + (" (base)" if v.options == base else "")
            rows.append([str(number), v.axis, label, *_row(s.measured[v.options])])
    report.table(
        section,
        f"LIME: one axis at a time ({n_f} flagged + {n_a} allowed vectors, {len(s.seeds)} seeds)",
        [
            "round",
            "axis",
            "setting",
            "median local R²",
            f"top-{TOP} agreement across seeds",
            f"top-{TOP} Jaccard with pred_contrib",
            "median gap to the score",
            "ms / explanation",
            "CPU ms",
            "quality",
        ],
        rows,
        f"Vectors: {s.source} (study set); model {s.model}. Explanations by "
        "fraudsvc.explain.explain_vector, one at a time, one BLAS thread, the settings "
        f"interleaved. R²: median over vectors and seeds (seeds {s.seeds[0]}..{s.seeds[-1]}); "
        f"agreement across seeds: mean pairwise Jaccard of the top {TOP} features (by absolute "
        f"weight), averaged over vectors; Jaccard with pred_contrib: against the top {TOP} of "
        "LightGBM's exact contributions; gap to the score: median |local prediction - score| "
        "in probability (a log-odds prediction through the logistic function), whether the "
        "local model reproduces the score of the transaction itself; ms: median wall time, "
        "CPU ms: median CPU time (the rules use it: another engineer's load stretches wall "
        "time); quality: mean of R² and "
        "agreement across seeds. R² is of the local model's own target (probability or "
        "log-odds). Kernel: width = factor x sqrt(features).",
    )
    size_rule = (
        f"num_samples {s.final.num_samples:,}: more samples are worth it while each doubling "
        f"of the time buys {GAIN_PER_DOUBLING:g} of top-{TOP} agreement, within "
        f"{s.budget_ms:.0f} ms per explanation (the flagged share, {100 * s.flagged_share:.2f} "
        f"%, of {SCORING_RATE:g} requests/s with one LIME process at most "
        f"{100 * BUSY_AT_MOST:.0f} % busy)"
    )
    report.note(
        section,
        f"Chosen: {describe(s.final)}, {s.final.stability_seeds} stability seed(s). The rounds "
        "started from the setting shipped before this study (LIME's defaults) and kept the "
        f"best value of each axis by quality (when it beat the base's by {MIN_GAIN:g}) until "
        "the base no longer changed; " + size_rule + ".",
    )
    ms = s.measured[dataclasses.replace(s.final, stability_seeds=0)].cpu()
    report.table(
        section,
        f"Stability seeds: how well k extra seeds estimate an explanation's stability "
        f"(reference: seeds {len(s.errors) + 1}..{len(s.k_seeds) - 1} after the shown one)",
        ["k", "mean absolute error", "CPU ms per stored explanation", "chosen"],
        [
            [
                str(k),
                f"{e:.3f}",
                f"{(1 + k) * ms:.1f}",
                "yes" if k == s.final.stability_seeds else "",
            ]
            for k, e in s.errors.items()
        ],
        f"At the chosen setting, {len(s.k_seeds)} seeds per vector: the shown explanation "
        f"(seed {s.k_seeds[0]}) against the next k, and against the last ones as the reference. "
        f"Rule: the fewest seeds within {MAX_ERROR:g} whose cost fits the budget.",
    )
    rows = []
    for model, confirmed in (("served", s.confirmed), ("SMOTE", s.confirmed_smote)):
        for label, m in confirmed.items():
            rows.append(
                [
                    model,
                    f"{label}: {describe(m.variant.options)}",
                    f"{m.median_r2():.3f} / {m.median_r2(True):.3f} / {m.median_r2(False):.3f}",
                    f"{m.stability():.3f} / {m.stability(True):.3f} / {m.stability(False):.3f}",
                    f"{m.agreement_with_exact():.3f}",
                    f"{m.median_gap():.3f}",
                    f"{m.ms():.1f}",
                ]
            )
    c_f = sum(s.confirm.flagged)
    report.table(
        section,
        f"Confirmation on unseen vectors ({c_f} flagged + {len(s.confirm.flagged) - c_f} allowed)",
        [
            "model",
            "setting",
            "median R² (all / flagged / allowed)",
            f"top-{TOP} agreement (all / flagged / allowed)",
            "Jaccard with pred_contrib",
            "median gap to the score",
            "ms / explanation",
        ],
        rows,
        f"The second set of vectors, never used to choose; served: {s.model}; SMOTE: "
        f"{s.smote_note}.",
    )
    if s.current != s.final:
        report.note(
            section,
            f"The service's defaults ({describe(s.current)}, {s.current.stability_seeds} "
            "stability seed(s)) differ from this run's choice: the FRAUDSVC_LIME_* settings "
            "change them.",
        )
    report.data["lime"] = {
        "source": s.source,
        "seeds": s.seeds,
        "flagged_share": s.flagged_share,
        "budget_ms": s.budget_ms,
        "final": dataclasses.asdict(s.final),
        "stability_seed_errors": s.errors,
        "smote": s.smote_note,
        "settings": [
            {
                "options": dataclasses.asdict(o),
                "r2": m.r2,
                "tops": [[sorted(t) for t in per_seed] for per_seed in m.tops],
                "exact": m.exact,
                "gap": m.gap,
                "wall_ms": m.wall_ms,
                "cpu_ms": m.cpu_ms,
            }
            for o, m in s.measured.items()
        ],
    }
