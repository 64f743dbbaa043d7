"""Offline figures: generator throughput, batch features and training time at 1M rows."""

from __future__ import annotations

import tempfile
from pathlib import Path

from loguru import logger

from fraudsvc.bench.report import Figure, Report, timed
from fraudsvc.contract import load_contract_file
from fraudsvc.datagen import GeneratorConfig, generate
from fraudsvc.features import batch_features
from fraudsvc.settings import Settings
from fraudsvc.training.pipeline import TrainOptions, train

# about 1.03M rows over 120 days
MILLION = GeneratorConfig(customers=4_000, terminals=8_000, days=120, seed=5)


def run(report: Report, settings: Settings, repeat: int, workdir: Path) -> Path:
    section = "offline (1M rows)"
    data = workdir / "bench-1m.parquet"
    rows = 0

    def gen() -> None:
        nonlocal rows
        rows = generate(MILLION, data).rows

    runs = timed(gen, repeat)
    report.add(
        section,
        Figure(
            "generator throughput", "rows/s", [rows / s for s in runs], f"{rows:,} rows, Parquet"
        ),
    )
    frame = load_contract_file(data, require_labels=True).frame
    report.add(
        section,
        Figure(
            "batch features (polars)",
            "s",
            timed(lambda: batch_features(frame), repeat),
            f"{frame.height:,} rows, 19 features",
        ),
    )

    def fit() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            isolated = Settings.from_env({"FRAUDSVC_DATA_DIR": tmp})
            train(isolated, TrainOptions(data=data, register=False))

    logger.disable("fraudsvc")
    try:
        report.add(
            section,
            Figure(
                "training, end to end",
                "s",
                timed(fit, repeat),
                "load + features + LightGBM (none and SMOTE) + baseline + MLflow",
            ),
        )
    finally:
        logger.enable("fraudsvc")
    return data
