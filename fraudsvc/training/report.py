"""The short summary table printed at the end of `fraudsvc train`."""

from __future__ import annotations

from fraudsvc.training.metrics import Quality
from fraudsvc.training.pipeline import TrainResult


def _fmt(value: float) -> str:
    return "n/a" if value != value else f"{value:.4f}"


def quality_rows(model: Quality, baseline: Quality | None = None) -> list[str]:
    def line(label: str, a: float, b: float | None) -> str:
        right = "" if b is None else f"{_fmt(b):>20}"
        return f"  {label:<28}{_fmt(a):>10}{right}"

    head = f"  {'':<28}{'LightGBM':>10}" + ("" if baseline is None else f"{'logistic regr.':>20}")
    b = baseline
    return [
        head,
        line("ROC AUC", model.roc_auc, None if b is None else b.roc_auc),
        line(
            "average precision", model.average_precision, None if b is None else b.average_precision
        ),
        line(
            "card precision@100 per day",
            model.card_precision_at_100,
            None if b is None else b.card_precision_at_100,
        ),
        f"  {'(best possible cp@100)':<28}{_fmt(model.card_precision_at_100_max):>10}",
    ]


def lift_rows(result: TrainResult) -> list[str]:
    """The model against the same LightGBM on the Handbook's baseline features alone."""
    if result.lift is None:
        return []
    b, gain = result.lift.baseline_features, result.lift.of(result.model)

    def line(label: str, a: float, base: float, delta: float) -> str:
        sign = "n/a" if delta != delta else f"{delta:+.4f}"
        return f"  {label:<28}{_fmt(a):>10}{_fmt(base):>20}{sign:>12}"

    return [
        "",
        f"  {'features':<28}{'all':>10}{'baseline only':>20}{'lift':>12}",
        line("ROC AUC", result.model.roc_auc, b.roc_auc, gain["roc_auc"]),
        line(
            "average precision",
            result.model.average_precision,
            b.average_precision,
            gain["average_precision"],
        ),
        line(
            "card precision@100 per day",
            result.model.card_precision_at_100,
            b.card_precision_at_100,
            gain["card_precision_at_100"],
        ),
    ]


def summary(result: TrainResult) -> str:
    p = result.plan
    valid = ", ".join(f"{m} {ap:.4f}" for m, ap in result.valid_ap.items())
    decisions = "  ".join(f"{d} {n:,}" for d, n in result.test_decisions.items())
    promo = result.promotion
    version = f"v{promo.registered_version}" if promo.registered_version else "none"
    lines = [
        "",
        "fraudsvc train: summary",
        f"  data          {result.source} ({result.rows:,} rows)",
        f"  fit           {p.fit}",
        f"  validation    {p.valid}  (gap {p.gap_days} d before it and before test)",
        f"  test          {p.test}  ({result.model.rows:,} rows, {result.model.frauds:,} frauds)",
        f"  resampling    {result.resampling}  (validation AP: {valid})",
        "",
        "  test period",
        *quality_rows(result.model, result.baseline),
        *lift_rows(result),
        "",
        f"  thresholds    review >= {result.thresholds.review:.4f}   "
        f"block >= {result.thresholds.block:.4f}",
        f"  test mix      {decisions}",
        f"  MLflow run    {result.run_id}",
        f"  registered    {version}" + (f" alias {promo.alias}" if promo.alias else ""),
        f"  decision      {promo.reason}",
        f"  plots         {result.reports_dir}",
        f"  took          {result.seconds:.1f} s",
    ]
    return "\n".join(lines)
