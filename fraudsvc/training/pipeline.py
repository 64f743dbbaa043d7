"""`fraudsvc train`: data -> features -> out-of-time split -> LightGBM -> metrics -> MLflow.

The steps read top to bottom in `train()`. Registration follows two rules: a version is
registered only when its test ROC AUC reaches MLFLOW_AUC_THRESHOLD, and the serving alias
(champion) moves to it only when it beats the current champion's average precision on the same
test rows; otherwise it gets the alias `challenger`.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import lightgbm as lgb
import numpy as np
import polars as pl
from loguru import logger
from sklearn.metrics import average_precision_score

from fraudsvc.contract import load_contract_file
from fraudsvc.decision import DECISIONS, Thresholds, decide
from fraudsvc.features import DECLARATION, Declaration, batch_features, feature_matrix
from fraudsvc.model import registry
from fraudsvc.model.bundle import BUNDLE_FORMAT, BundleMeta, ModelRefused
from fraudsvc.model.reference import build_reference
from fraudsvc.progress import Stages
from fraudsvc.settings import Settings
from fraudsvc.training import plots
from fraudsvc.training.fit import lightgbm_params, predict, train_baseline, train_lightgbm
from fraudsvc.training.lift import Lift, baseline_lift
from fraudsvc.training.metrics import Quality, quality
from fraudsvc.training.resample import SMOTE_RATIO, Resampling, resample
from fraudsvc.training.split import SplitOptions, SplitPlan, plan_split
from fraudsvc.training.thresholds import choose_thresholds

CHALLENGER_ALIAS = "challenger"
BACKGROUND_ROWS = 2_000


class TrainingError(RuntimeError):
    """Training cannot go on with this data (no frauds in a period, and such)."""


@dataclass(frozen=True)
class TrainOptions:
    data: Path | None = None
    """A contract file; None means DATA_CSV."""
    frame: pl.DataFrame | None = None
    """Already loaded contract rows (from the database); overrides `data`."""
    frame_source: str = ""
    split: SplitOptions = field(default_factory=SplitOptions)
    resampling: Literal["auto", "smote", "none"] = "auto"
    seed: int = 42
    max_rounds: int = 1000
    block_precision: float = 0.9
    review_budget: float = 0.01
    register: bool = True
    declaration: Declaration = DECLARATION
    """The features to train on (the default declaration unless a study asks for others)."""


@dataclass(frozen=True)
class TestPeriod:
    """The test rows, to compare a new model with the champion on the same transactions."""

    frame: pl.DataFrame
    plan: SplitPlan
    declaration: Declaration
    x: np.ndarray
    y: np.ndarray

    def matrix(self, decl: Declaration) -> np.ndarray:
        """The test rows' features under another declaration (a champion trained on others)."""
        if decl.hash == self.declaration.hash:
            return self.x
        rows = batch_features(self.frame, decl).filter(self.plan.test.mask())
        return feature_matrix(rows, decl)


@dataclass(frozen=True)
class Promotion:
    registered_version: str | None
    alias: str | None
    reason: str
    champion_before: str | None = None
    champion_before_ap: float | None = None


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    source: str
    rows: int
    plan: SplitPlan
    resampling: Resampling
    valid_ap: dict[str, float]
    model: Quality
    baseline: Quality
    lift: Lift | None
    """The same LightGBM on the baseline features alone (None when training on them)."""
    thresholds: Thresholds
    test_decisions: dict[str, int]
    test_scores: np.ndarray
    promotion: Promotion
    seconds: float
    reports_dir: Path


def _fingerprint(path: Path | None, frame: pl.DataFrame) -> str:
    digest = hashlib.sha256()
    if path is not None:
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    else:
        for chunk in frame.iter_slices(200_000):
            digest.update(chunk.write_csv().encode())
    return digest.hexdigest()


def _require_both_classes(name: str, y: np.ndarray) -> None:
    frauds = int(y.sum())
    if frauds == 0 or frauds == y.size:
        raise TrainingError(
            f"the {name} period has {y.size} rows and {frauds} frauds; it needs both classes "
            "(choose other periods or generate more days)"
        )


def train(settings: Settings, opt: TrainOptions) -> TrainResult:
    stages = Stages(total=9)
    decl = opt.declaration
    names = list(decl.names)
    categorical = [names.index(n) for n in decl.categorical]

    with stages.stage("load and check the data"):
        if opt.frame is not None:
            frame, source, path = opt.frame, opt.frame_source or "database", None
        else:
            path = opt.data or settings.paths.data_file
            frame, source = load_contract_file(path, require_labels=True).frame, str(path)
        if frame.height == 0:
            raise TrainingError(f"{source} holds no transactions")
        fingerprint = _fingerprint(path, frame)
        logger.info(
            "  {:,} transactions, {:,} frauds ({:.2%}), {} .. {}",
            frame.height,
            int(frame["is_fraud"].sum()),
            float(frame["is_fraud"].mean()),  # type: ignore[arg-type]
            frame["timestamp"].min(),
            frame["timestamp"].max(),
        )

    with stages.stage("compute features (batch path)"):
        featured = batch_features(frame, decl)

    with stages.stage("split by time"):
        first, last = frame["timestamp"].min(), frame["timestamp"].max()
        assert isinstance(first, datetime) and isinstance(last, datetime)
        plan = plan_split(first, last, opt.split)
        fit_rows = featured.filter(plan.fit.mask())
        valid_rows = featured.filter(plan.valid.mask())
        test_rows = featured.filter(plan.test.mask())
        x_fit, x_valid, x_test = (
            feature_matrix(f, decl) for f in (fit_rows, valid_rows, test_rows)
        )
        y_fit, y_valid, y_test = (
            f["is_fraud"].to_numpy().astype(np.int64) for f in (fit_rows, valid_rows, test_rows)
        )
        for period, y in (("fit", y_fit), ("validation", y_valid), ("test", y_test)):
            _require_both_classes(period, y)
        for period, p, y in (
            ("fit", plan.fit, y_fit),
            ("validation", plan.valid, y_valid),
            ("test", plan.test, y_test),
        ):
            logger.info("  {:<10} {}  {:>9,} rows {:>6,} frauds", period, p, y.size, int(y.sum()))

    with stages.stage("train LightGBM"):
        methods: list[Resampling] = (
            ["none", "smote"] if opt.resampling == "auto" else [opt.resampling]
        )
        candidates: dict[Resampling, tuple[lgb.Booster, float]] = {}
        for method in methods:
            x_r, y_r = resample(x_fit, y_fit, method, opt.seed, categorical)
            booster = train_lightgbm(
                x_r,
                y_r,
                x_valid,
                y_valid,
                names,
                list(decl.lightgbm_categorical),
                opt.seed,
                opt.max_rounds,
                method,
            )
            ap = float(average_precision_score(y_valid, predict(booster, x_valid)))
            candidates[method] = (booster, ap)
            logger.info(
                "  resampling={:<5} {} trees, validation AP {:.4f}",
                method,
                booster.current_iteration(),
                ap,
            )
        chosen: Resampling = max(candidates, key=lambda m: candidates[m][1])
        booster = candidates[chosen][0]
        valid_ap: dict[str, float] = {m: ap for m, (_, ap) in candidates.items()}

    with stages.stage("train the logistic-regression baseline"):
        baseline = train_baseline(x_fit, y_fit)

    with stages.stage("train on the baseline features alone (the lift of the others)"):
        lift = baseline_lift(decl, frame, featured, plan, chosen, opt.seed, opt.max_rounds)

    with stages.stage("choose thresholds and evaluate on the test period"):
        valid_scores = predict(booster, x_valid)
        threshold_meta, threshold_report = choose_thresholds(
            valid_scores, y_valid, opt.block_precision, opt.review_budget
        )
        thresholds = Thresholds(review=threshold_meta.review, block=threshold_meta.block)
        test_scores = predict(booster, x_test)
        baseline_scores = baseline.predict_proba(x_test)[:, 1]
        model_quality = quality(test_rows, test_scores)
        baseline_quality = quality(test_rows, baseline_scores)
        decisions = [decide(float(s), thresholds) for s in test_scores]
        test_decisions: dict[str, int] = {d: decisions.count(d) for d in DECISIONS}

    reports = settings.paths.reports_dir / "train"
    with stages.stage("plots"):
        reports.mkdir(parents=True, exist_ok=True)
        plot_paths = [
            *plots.curves(
                y_test,
                {
                    "LightGBM": test_scores,
                    **({} if lift is None else {"LightGBM, baseline features": lift.scores}),
                    "logistic regression": baseline_scores,
                },
                reports,
            ),
            plots.importance(booster, reports),
            plots.score_distribution(y_test, test_scores, thresholds, reports),
        ]

    with stages.stage("log to MLflow, register and promote"):
        rng = np.random.default_rng(opt.seed)
        take = rng.choice(x_fit.shape[0], size=min(BACKGROUND_ROWS, x_fit.shape[0]), replace=False)
        meta = BundleMeta(
            format=BUNDLE_FORMAT,
            feature_spec=decl.to_dict(),
            feature_hash=decl.hash,
            thresholds=threshold_meta,
            feature_reference={
                n: build_reference(x_fit[:, i], categorical=n in decl.categorical)
                for i, n in enumerate(names)
            },
            score_reference=build_reference(valid_scores),
            training={
                "source": source,
                "dataset_sha256": fingerprint,
                "rows": frame.height,
                "fit": str(plan.fit),
                "valid": str(plan.valid),
                "test": str(plan.test),
                "resampling": chosen,
                "test_average_precision": model_quality.average_precision,
                "test_roc_auc": model_quality.roc_auc,
                "trained_at": datetime.now(UTC).isoformat(),
            },
        )
        run_id, promotion = _log_and_register(
            settings,
            opt,
            booster=booster,
            meta=meta,
            background=x_fit[np.sort(take)],
            params={
                **{f"lgb_{k}": v for k, v in lightgbm_params(opt.seed).items()},
                "lgb_num_trees": booster.current_iteration(),
                "resampling": chosen,
                "resampling_option": opt.resampling,
                "smote_ratio": SMOTE_RATIO,
                "fit_period": str(plan.fit),
                "valid_period": str(plan.valid),
                "test_period": str(plan.test),
                "gap_days": plan.gap_days,
                "seed": opt.seed,
                "feature_hash": decl.hash,
                "feature_count": len(names),
                "dataset_source": source,
                "dataset_sha256": fingerprint,
                "dataset_rows": frame.height,
                "threshold_rule": threshold_meta.rule,
            },
            metrics={
                **_prefixed("test_", model_quality),
                **_prefixed("baseline_test_", baseline_quality),
                **(
                    {}
                    if lift is None
                    else {
                        **_prefixed("baseline_features_test_", lift.baseline_features),
                        **{
                            f"lift_test_{k}": v
                            for k, v in lift.of(model_quality).items()
                            if not math.isnan(v)
                        },
                    }
                ),
                **{f"valid_ap_{m}": ap for m, ap in valid_ap.items()},
                **threshold_report,
                "threshold_review": thresholds.review,
                "threshold_block": thresholds.block,
                **{f"test_decisions_{d}": float(n) for d, n in test_decisions.items()},
            },
            plots=plot_paths,
            test=TestPeriod(frame, plan, decl, x_test, y_test),
            new_ap=model_quality.average_precision,
            new_auc=model_quality.roc_auc,
        )

    return TrainResult(
        run_id=run_id,
        source=source,
        rows=frame.height,
        plan=plan,
        resampling=chosen,
        valid_ap=valid_ap,
        model=model_quality,
        baseline=baseline_quality,
        lift=lift,
        thresholds=thresholds,
        test_decisions=test_decisions,
        test_scores=test_scores,
        promotion=promotion,
        seconds=stages.elapsed,
        reports_dir=reports,
    )


def _prefixed(prefix: str, q: Quality) -> dict[str, float]:
    values = {
        "roc_auc": q.roc_auc,
        "average_precision": q.average_precision,
        "card_precision_at_100": q.card_precision_at_100,
        "card_precision_at_100_max": q.card_precision_at_100_max,
        "frauds": float(q.frauds),
        "rows": float(q.rows),
    }
    return {prefix + k: v for k, v in values.items() if not math.isnan(v)}


def _log_and_register(
    settings: Settings,
    opt: TrainOptions,
    *,
    booster: lgb.Booster,
    meta: BundleMeta,
    background: np.ndarray,
    params: dict[str, object],
    metrics: dict[str, float],
    plots: list[Path],
    test: TestPeriod,
    new_ap: float,
    new_auc: float,
) -> tuple[str, Promotion]:
    import mlflow

    ms = settings.mlflow
    experiment_id = registry.ensure_experiment(ms)
    run_name = f"train-{time.strftime('%Y%m%d-%H%M%S')}"
    with (
        registry.fluent(ms),
        mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run,
    ):
        mlflow.log_params({k: str(v)[:6000] for k, v in params.items()})
        mlflow.log_metrics(metrics)
        for plot in plots:
            mlflow.log_artifact(str(plot), artifact_path="plots")
        model_uri = registry.log_bundle(booster, meta, background, test.x[:50])
        run_id = run.info.run_id
        promotion = _register_and_promote(settings, opt, model_uri, run_id, test, new_ap, new_auc)
        mlflow.set_tags(
            {
                "registered_version": promotion.registered_version or "",
                "alias": promotion.alias or "",
                "promotion": promotion.reason,
            }
        )
    return run_id, promotion


def _register_and_promote(
    settings: Settings,
    opt: TrainOptions,
    model_uri: str,
    run_id: str,
    test: TestPeriod,
    new_ap: float,
    new_auc: float,
) -> Promotion:
    ms = settings.mlflow
    if not opt.register:
        return Promotion(None, None, "not registered (--no-register)")
    if not new_auc >= ms.auc_threshold:
        return Promotion(
            None,
            None,
            f"not registered: test ROC AUC {new_auc:.4f} is below "
            f"MLFLOW_AUC_THRESHOLD={ms.auc_threshold:g}",
        )
    current = registry.version_for_alias(ms, ms.model_name, ms.model_alias)
    version = registry.register(
        ms,
        model_uri,
        tags={
            "run_id": run_id,
            "feature_hash": test.declaration.hash,
            "test_average_precision": f"{new_ap:.6f}",
            "test_roc_auc": f"{new_auc:.6f}",
        },
    )
    c = registry.client(ms)
    if current is None:
        c.set_registered_model_alias(ms.model_name, ms.model_alias, version)
        return Promotion(
            version, ms.model_alias, f"first {ms.model_alias}: no model held the alias"
        )

    try:
        champion = registry.load_version(
            ms, ms.model_name, current.version, settings.paths.model_cache_dir
        )
    except ModelRefused as exc:
        c.set_registered_model_alias(ms.model_name, ms.model_alias, version)
        return Promotion(
            version,
            ms.model_alias,
            f"promoted: the {ms.model_alias} v{current.version} cannot be served by this "
            f"code ({exc})",
            champion_before=current.version,
        )
    # the champion is scored on the same rows through its own features
    champion_ap = float(
        average_precision_score(
            test.y, predict(champion.booster, test.matrix(champion.declaration))
        )
    )
    if new_ap > champion_ap:
        c.set_registered_model_alias(ms.model_name, ms.model_alias, version)
        reason = (
            f"promoted to {ms.model_alias}: test AP {new_ap:.4f} beats "
            f"v{current.version}'s {champion_ap:.4f} on the same test period"
        )
        alias = ms.model_alias
    else:
        c.set_registered_model_alias(ms.model_name, CHALLENGER_ALIAS, version)
        reason = (
            f"registered as {CHALLENGER_ALIAS}: test AP {new_ap:.4f} does not beat "
            f"{ms.model_alias} v{current.version}'s {champion_ap:.4f} on the same test period"
        )
        alias = CHALLENGER_ALIAS
    return Promotion(version, alias, reason, current.version, champion_ap)
