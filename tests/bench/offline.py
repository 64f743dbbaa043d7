"""Offline figures: generator throughput, batch features (polars, and pandas for comparison) and
training time at 1M rows."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
from loguru import logger

from fraudsvc.contract import load_contract_file
from fraudsvc.datagen import generate
from fraudsvc.features import batch_features, feature_matrix
from fraudsvc.features.default import BASELINE
from fraudsvc.settings import Settings
from fraudsvc.training.pipeline import TrainOptions, train
from tests.bench.pandas_features import pandas_features, to_pandas
from tests.bench.plan import Plan
from tests.bench.report import Figure, Report, timed

TOLERANCE = 1e-9


def data_file(plan: Plan, workdir: Path) -> Path:
    """The benchmark's data set, generated once per run (the offline section times it)."""
    path = data_path(plan, workdir)
    if not path.is_file():
        generate(plan.data, path)
    return path


def data_path(plan: Plan, workdir: Path) -> Path:
    return workdir / f"bench-{plan.data.customers}c-{plan.data.days}d.parquet"


def compare_features(frame: pl.DataFrame, report: Report, section: str, repeat: int) -> None:
    """polars and pandas on the same rows in this process, alternating, then value by value."""
    frame_pd = to_pandas(frame)  # not timed: both start from an in-memory frame
    polars_runs: list[float] = []
    pandas_runs: list[float] = []
    polars_out = pandas_out = None
    for _ in range(repeat):
        started = time.perf_counter()
        polars_out = batch_features(frame, BASELINE)
        polars_runs.append(time.perf_counter() - started)
        started = time.perf_counter()
        pandas_out = pandas_features(frame_pd)
        pandas_runs.append(time.perf_counter() - started)
    assert polars_out is not None
    assert pandas_out is not None
    rows = f"{frame.height:,} rows, {len(BASELINE.names)} features"
    polars_fig = report.add(section, Figure("batch features (polars)", "s", polars_runs, rows))
    pandas_fig = report.add(
        section,
        Figure(
            "batch features (pandas reference)",
            "s",
            pandas_runs,
            "groupby + time-based rolling, merge_asof for the delayed terminal windows",
        ),
    )
    report.add(
        section,
        Figure(
            "pandas / polars time",
            "x",
            [p / q for p, q in zip(pandas_runs, polars_runs, strict=True)],
            "per run, same process, same rows",
        ),
    )
    ours = feature_matrix(polars_out, BASELINE)
    theirs = pandas_out.to_numpy(dtype=np.float64)
    worst = np.nanmax(np.abs(ours - theirs), axis=0)
    mismatched_nan = int((np.isnan(ours) != np.isnan(theirs)).sum())
    offenders = {n: float(w) for n, w in zip(BASELINE.names, worst, strict=True) if w > 0}
    equal = mismatched_nan == 0 and all(w <= TOLERANCE for w in worst)
    report.data["feature_equality"] = {
        "rows": frame.height,
        "tolerance": TOLERANCE,
        "equal": equal,
        "max_abs_difference": dict(zip(BASELINE.names, map(float, worst), strict=True)),
        "nan_mismatches": mismatched_nan,
    }
    worst_name = max(offenders, key=lambda n: offenders[n]) if offenders else None
    if equal:
        detail = (
            f"pandas equals polars within {TOLERANCE:g} on every one of {frame.height:,} rows "
            f"and {len(BASELINE.names)} features"
            + (
                f" (largest difference {offenders[worst_name]:.1e} in {worst_name}: "
                "floating-point summation order of the rolling sums)"
                if worst_name
                else " (bit for bit)"
            )
            + "."
        )
    else:
        detail = (
            f"pandas differs from polars beyond {TOLERANCE:g}: "
            + ", ".join(f"{n} {w:.3g}" for n, w in offenders.items() if w > TOLERANCE)
            + (f"; {mismatched_nan} NaN mismatches" if mismatched_nan else "")
            + ". The definitions in fraudsvc/features.py decide; see bench.json feature_equality."
        )
    report.note(
        section,
        f"Feature check: {detail} Polars takes {polars_fig.median:.2f} s and pandas "
        f"{pandas_fig.median:.2f} s (medians): pandas is "
        f"{pandas_fig.median / polars_fig.median:.1f}x the polars time.",
    )


def run(report: Report, plan: Plan, workdir: Path) -> Path:
    """Generate the data set `repeat` times (timed), then features and training on it."""
    section = "offline"
    data = data_path(plan, workdir)
    rows = 0

    def gen() -> None:
        nonlocal rows
        rows = generate(plan.data, data).rows

    runs = timed(gen, plan.repeat)
    report.add(
        section,
        Figure(
            "generator throughput", "rows/s", [rows / s for s in runs], f"{rows:,} rows, Parquet"
        ),
    )
    frame = load_contract_file(data, require_labels=True).frame
    compare_features(frame, report, section, plan.repeat)

    def fit() -> None:
        with tempfile.TemporaryDirectory(dir=workdir) as tmp:
            isolated = Settings.from_env({"FRAUDSVC_DATA_DIR": tmp})
            train(isolated, TrainOptions(data=data, register=False))

    logger.disable("fraudsvc")
    try:
        report.add(
            section,
            Figure(
                "training, end to end",
                "s",
                timed(fit, plan.repeat),
                f"{rows:,} rows: load + features + LightGBM (none and SMOTE) + baseline + MLflow",
            ),
        )
    finally:
        logger.enable("fraudsvc")
    return data
