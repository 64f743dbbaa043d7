"""The benchmark's pandas reference computes the same features as the polars batch path."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest

from fraudsvc.contract import load_contract_file
from fraudsvc.datagen import GeneratorConfig, generate
from fraudsvc.features import batch_features, feature_matrix
from fraudsvc.features.default import BASELINE
from tests.bench.pandas_features import pandas_features, to_pandas
from tests.timeline import at, frame


def assert_same(df: pl.DataFrame) -> None:
    ours = feature_matrix(batch_features(df, BASELINE), BASELINE)
    theirs = pandas_features(to_pandas(df)).to_numpy(dtype=np.float64)
    assert theirs.shape == ours.shape
    np.testing.assert_allclose(theirs, ours, rtol=0, atol=1e-9)


def test_pandas_features_have_the_spec_columns_in_order() -> None:
    df = frame([("a", at(0), "C1", "T1", 10.0, 0)])
    out = pandas_features(to_pandas(df))
    assert list(out.columns) == list(BASELINE.names)
    assert out.shape == (1, len(BASELINE.names))


def test_pandas_equals_polars_at_window_edges_and_ties() -> None:
    df = frame(
        [
            ("a", at(0), "C1", "T1", 10.0, 1),
            ("b", at(hours=1), "C1", "T1", 20.0, 0),  # exactly 1 h after a
            ("c", at(hours=1), "C1", "T2", 40.0, 0),  # same instant as b
            ("d", at(days=1, hours=1), "C1", "T1", 30.0, 0),  # exactly 1 d after b and c
            ("e", at(days=7), "C2", "T1", 5.0, 1),  # a is exactly one label delay back
            ("f", at(days=8, hours=1), "C2", "T1", 0.0, 0),  # b, c one delay + 1 d back
            ("g", at(days=37), "C3", "T1", 7.5, 0),  # a exactly at the 30 d terminal edge
            ("h", at(days=40), "C1", "T2", 12.0, 0),  # C1 after a month: capped gap
        ]
    )
    assert_same(df)


def test_pandas_features_keep_the_row_order_of_the_input() -> None:
    df = frame(
        [
            ("x", at(hours=2), "C2", "T9", 3.0, 0),
            ("y", at(0), "C1", "T1", 1.0, 0),
            ("z", at(hours=1), "C1", "T1", 2.0, 0),
        ]
    ).sort("customer_id", descending=True)  # not time order
    out = pandas_features(to_pandas(df))
    np.testing.assert_allclose(out["amount"].to_numpy(), df["amount"].to_numpy())
    assert_same(df)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    out = tmp_path_factory.mktemp("bench") / "tiny.parquet"
    cfg = GeneratorConfig(
        customers=60, terminals=120, days=45, start=datetime(2026, 1, 1, tzinfo=UTC), seed=3
    )
    generate(cfg, out)
    return load_contract_file(out, require_labels=True).frame


def test_pandas_equals_polars_on_generated_data(generated: pl.DataFrame) -> None:
    assert generated.height > 1_000
    assert_same(generated)
