"""Section `lime`: LIME's settings chosen by measurement (fidelity, stability, cost).

Around a base setting, one axis is varied at a time (representation: quartile, decile or
entropy discretizer, or continuous features sampled from the background's mean or around the
transaction; target: probability or log-odds; kernel width; num_samples), on the study set of
vectors (`lime_measure`). The best value of each axis (`lime_rules`) makes the next base; the
rounds stop when the base no longer changes (at most MAX_ROUNDS), starting from the setting the
service shipped with before this study. num_samples is then chosen by its doubling rule, the
number of stability seeds by how well few seeds estimate the stability that many seeds measure,
and the final setting is confirmed against the old one on the second, unseen set of vectors,
with the served model and with a model trained by the same pipeline with SMOTE (what
`--resampling auto` ships when SMOTE validates better): SMOTE's synthetic frauds change how the
model scores the off-sample points LIME draws.
"""

from __future__ import annotations

import dataclasses
import time

from fraudsvc.explain_options import TARGETS, Discretizer, LimeOptions
from fraudsvc.model.bundle import load_bundle
from tests.bench import lime_report
from tests.bench.environment import Bench
from tests.bench.lime_measure import Measured, Variant, describe, measure, vectors
from tests.bench.lime_rules import (
    best,
    budget_ms,
    choose_k,
    mean_abs_error,
    quality,
    recommend,
    seed_estimates,
)
from tests.bench.report import Report

SECTION = "lime: LIME's settings (fidelity, stability, agreement with pred_contrib, cost)"
MAX_ROUNDS = 3
SMOTE_MODEL = "fraud-detection-model-smote"
SHIPPED = LimeOptions(
    num_samples=2000,
    discretizer="quartile",
    sample_around_instance=False,
    kernel_width_factor=0.75,
    target="probability",
    stability_seeds=0,
)
"""The setting the service used before this study: LIME's defaults."""
REPRESENTATIONS: tuple[tuple[Discretizer, bool], ...] = (
    ("quartile", False),
    ("decile", False),
    ("entropy", False),
    ("none", False),
    ("none", True),
)
"""(discretizer, sample_around_instance): sampling around the instance only changes anything
without a discretizer (a discretized sample is drawn within bins of the background)."""


def around(base: LimeOptions, widths: tuple[float, ...], sizes: tuple[int, ...]) -> list[Variant]:
    """The base, then one axis varied at a time."""
    r = dataclasses.replace
    options = [("base", base)]
    options += [
        ("representation", r(base, discretizer=d, sample_around_instance=a))
        for d, a in REPRESENTATIONS
    ]
    options += [("target", r(base, target=t)) for t in TARGETS]
    options += [("kernel width", r(base, kernel_width_factor=w)) for w in widths]
    options += [("num_samples", r(base, num_samples=n)) for n in sizes]
    seen: set[LimeOptions] = set()
    variants = []
    for axis, o in options:
        if o not in seen:
            seen.add(o)
            variants.append(Variant(axis, describe(o), o))
    return variants


def next_base(base: LimeOptions, measured: dict[str, Measured]) -> LimeOptions:
    """The best value of each axis (num_samples stays at the base's)."""

    base_label = next(label for label, m in measured.items() if m.variant.options == base)

    def winner(axis: str) -> LimeOptions:
        ranked = {
            label: quality(m.median_r2(), m.stability())
            for label, m in measured.items()
            if m.variant.axis == axis or label == base_label
        }
        return measured[best(ranked, base_label)].variant.options

    rep, target, kernel = winner("representation"), winner("target"), winner("kernel width")
    return dataclasses.replace(
        base,
        discretizer=rep.discretizer,
        sample_around_instance=rep.sample_around_instance,
        target=target.target,
        kernel_width_factor=kernel.kernel_width_factor,
    )


def run(bench: Bench, report: Report) -> None:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):  # as in the worker's LIME processes (explain.warm_up)
        _run(bench, report)


def _run(bench: Bench, report: Report) -> None:
    plan = bench.plan
    seed0 = bench.settings.explain.seed
    sets, flagged_share, source = vectors(bench, plan.lime_vectors, plan.lime_allowed)
    study, confirm = sets
    if sum(study.flagged) < 2 or sum(confirm.flagged) < 2:
        report.note(SECTION, "Too few flagged vectors to measure LIME.")
        return
    model_dir = str(bench.model.path)
    names = load_bundle(bench.model.path).feature_names
    seeds = [seed0 + i for i in range(plan.lime_seeds)]
    budget = budget_ms(flagged_share)
    started = time.perf_counter()

    measured: dict[LimeOptions, Measured] = {}
    rounds: list[tuple[LimeOptions, list[Variant]]] = []
    base = SHIPPED
    for number in range(1, MAX_ROUNDS + 1):
        variants = around(base, plan.lime_kernel_widths, plan.lime_samples)
        todo = [v for v in variants if v.options not in measured]
        print(f"    round {number}: {len(todo)} new setting(s) around {describe(base)}", flush=True)
        for m in measure(model_dir, names, study, todo, seeds).values():
            measured[m.variant.options] = m
        rounds.append((base, variants))
        this_round = {v.label: _as(measured[v.options], v) for v in variants}
        following = next_base(base, this_round)
        if following == base or number == MAX_ROUNDS:  # the last base is the measured one
            break
        base = following

    sizes = {n: measured[dataclasses.replace(base, num_samples=n)] for n in plan.lime_samples}
    chosen_n = recommend(
        {n: m.stability() for n, m in sizes.items()}, {n: m.cpu() for n, m in sizes.items()}, budget
    )
    final = dataclasses.replace(base, num_samples=chosen_n)

    k_seeds = [seed0 + i for i in range(plan.lime_k_seeds)]
    many = measure(model_dir, names, study, [Variant("seeds", describe(final), final)], k_seeds)
    tops = next(iter(many.values())).tops
    errors = {
        k: mean_abs_error(*seed_estimates(tops, k, reference_from=plan.lime_max_k + 1))
        for k in range(1, plan.lime_max_k + 1)
    }
    chosen_k = choose_k(errors, measured[final].cpu(), budget)
    final = dataclasses.replace(final, stability_seeds=chosen_k)

    old, new = Variant("confirm", "before", SHIPPED), Variant("confirm", "chosen", final)
    confirmed = measure(model_dir, names, confirm, [old, new], seeds)
    smote_dir, smote_note = smote_model(bench)
    confirmed_smote = (
        measure(smote_dir, names, confirm, [old, new], seeds) if smote_dir is not None else {}
    )
    seconds = time.perf_counter() - started
    print(f"    {len(measured)} settings, then the seeds and the confirmation in {seconds:.0f} s")

    lime_report.write(
        report,
        SECTION,
        lime_report.Study(
            source=source,
            model=f"{bench.model.name} v{bench.model.version}",
            study=study,
            confirm=confirm,
            seeds=seeds,
            k_seeds=k_seeds,
            rounds=rounds,
            measured=measured,
            shipped=SHIPPED,
            final=final,
            current=LimeOptions(),
            budget_ms=budget,
            flagged_share=flagged_share,
            errors=errors,
            confirmed=confirmed,
            confirmed_smote=confirmed_smote,
            smote_note=smote_note,
        ),
    )


def smote_model(bench: Bench) -> tuple[str | None, str]:
    """A model trained on the bench's data with SMOTE, registered under a name of its own (the
    served model's alias never moves); its folder, and what it is."""
    from loguru import logger

    from fraudsvc.model import registry
    from fraudsvc.settings import Settings
    from fraudsvc.training.pipeline import TrainOptions, train

    settings = Settings.from_env(bench.env | {"MLFLOW_MODEL_NAME": SMOTE_MODEL})
    print("    training a model with SMOTE for the confirmation ...", flush=True)
    logger.disable("fraudsvc")
    try:
        options = TrainOptions(
            data=bench.data, resampling="smote", max_rounds=bench.plan.model_rounds
        )
        result = train(settings, options)
    finally:
        logger.enable("fraudsvc")
    version = result.promotion.registered_version
    if version is None:
        return None, f"the SMOTE model was not registered: {result.promotion.reason}"
    folder = settings.paths.data_dir / "bench-model-smote"
    bundle = registry.load_version(settings.mlflow, SMOTE_MODEL, version, folder)
    note = (
        f"{SMOTE_MODEL} v{version}: test ROC AUC {result.model.roc_auc:.3f}, average "
        f"precision {result.model.average_precision:.3f}"
    )
    return str(bundle.path), note


def _as(m: Measured, variant: Variant) -> Measured:
    """The measure of an options value under the axis it is listed on in this round."""
    return dataclasses.replace(m, variant=variant)
