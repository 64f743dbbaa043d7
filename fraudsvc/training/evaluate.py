"""`fraudsvc evaluate`: backtest a registered model on a contract file, offline.

The file goes through the same batch features as training; the chosen period's rows are scored
with the model's own thresholds, written out per row, and summarised.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl

from fraudsvc.contract import load_contract_file
from fraudsvc.decision import DECISIONS, decide
from fraudsvc.features import batch_features, feature_matrix
from fraudsvc.model import registry
from fraudsvc.model.bundle import ModelBundle, load_bundle
from fraudsvc.settings import Settings
from fraudsvc.training.fit import predict
from fraudsvc.training.metrics import Quality, quality


@dataclass(frozen=True)
class Backtest:
    model: str
    source: str
    start: datetime
    end: datetime
    quality: Quality
    decisions: dict[str, int]
    precision_flagged: float
    recall_flagged: float
    out: Path | None


def load_model(settings: Settings, uri: str | None) -> ModelBundle:
    """A registry URI (default: the serving alias) or a local model directory."""
    if uri and not uri.startswith("models:/"):
        return load_bundle(Path(uri))
    ms = settings.mlflow
    name, version = registry.resolve_model_uri(
        settings.mlflow, uri or f"models:/{ms.model_name}@{ms.model_alias}"
    )
    return registry.load_version(ms, name, version, settings.paths.model_cache_dir)


def backtest(
    settings: Settings,
    path: Path,
    model_uri: str | None = None,
    start: date | None = None,
    end: date | None = None,
    out: Path | None = None,
) -> Backtest:
    bundle = load_model(settings, model_uri)
    decl = bundle.declaration  # the model's own features, whatever the default is today
    frame = load_contract_file(path, require_labels=True).frame
    featured = batch_features(frame, decl)
    lo = (
        datetime(start.year, start.month, start.day, tzinfo=UTC)
        if start
        else frame["timestamp"].min()
    )
    hi = (
        datetime(end.year, end.month, end.day, tzinfo=UTC) + timedelta(days=1)
        if end
        else frame["timestamp"].max() + timedelta(microseconds=1)  # type: ignore[operator]
    )
    assert isinstance(lo, datetime) and isinstance(hi, datetime)
    rows = featured.filter((pl.col("timestamp") >= lo) & (pl.col("timestamp") < hi))
    if rows.height == 0:
        raise ValueError(f"{path}: no transactions between {lo} and {hi}")
    scores = predict(bundle.booster, feature_matrix(rows, decl))
    thresholds = bundle.thresholds
    decisions = [decide(float(s), thresholds) for s in scores]
    scored = rows.select("transaction_id", "timestamp", "customer_id", "is_fraud").with_columns(
        pl.Series("score", scores), pl.Series("decision", decisions)
    )
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix.lower() == ".csv":
            scored.write_csv(out)
        else:
            scored.write_parquet(out)
    flagged = scored.filter(pl.col("decision") != "allow")
    frauds = int(scored["is_fraud"].sum())
    caught = int(flagged["is_fraud"].sum())
    return Backtest(
        model=f"{bundle.name} v{bundle.version}",
        source=str(path),
        start=lo,
        end=hi,
        quality=quality(rows, scores),
        decisions={d: decisions.count(d) for d in DECISIONS},
        precision_flagged=caught / flagged.height if flagged.height else float("nan"),
        recall_flagged=caught / frauds if frauds else float("nan"),
        out=out,
    )


def summary(result: Backtest) -> str:
    from fraudsvc.training.report import quality_rows

    q = result.quality
    return "\n".join(
        [
            "",
            f"fraudsvc evaluate: {result.model} on {result.source}",
            f"  period        {result.start} .. {result.end} "
            f"({q.rows:,} rows, {q.frauds:,} frauds)",
            *quality_rows(q),
            "  decisions     " + "  ".join(f"{d} {n:,}" for d, n in result.decisions.items()),
            f"  flagged       precision {result.precision_flagged:.4f}  "
            f"recall {result.recall_flagged:.4f}",
            f"  per-row file  {result.out or '(not written; use --out)'}",
        ]
    )
