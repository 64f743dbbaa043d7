"""The generator: seeded, contract-valid, with every fraud scenario at a realistic rate."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from fraudsvc import datagen
from fraudsvc.contract import load_contract_file
from fraudsvc.datagen import SCENARIOS, GeneratorConfig, generate

CFG = GeneratorConfig(customers=300, terminals=600, days=40, seed=3)


def test_same_seed_gives_identical_output(tmp_path: Path) -> None:
    a = generate(CFG, tmp_path / "a.parquet")
    b = generate(CFG, tmp_path / "b.parquet")
    assert a.rows == b.rows
    assert pl.read_parquet(a.path).equals(pl.read_parquet(b.path))


def test_another_seed_gives_other_data(tmp_path: Path) -> None:
    a = pl.read_parquet(generate(CFG, tmp_path / "a.parquet").path)
    other = GeneratorConfig(customers=300, terminals=600, days=40, seed=4)
    b = pl.read_parquet(generate(other, tmp_path / "b.parquet").path)
    assert not a.equals(b)


def test_output_meets_the_contract_in_time_order(small_data: Path) -> None:
    checked = load_contract_file(small_data, require_labels=True)
    raw = pl.read_parquet(small_data)
    assert raw["timestamp"].is_sorted()
    assert raw["transaction_id"].n_unique() == raw.height
    assert checked.ignored_columns == ("fraud_scenario",)
    first = raw["timestamp"].min()
    assert isinstance(first, datetime)
    assert first >= datetime(2026, 1, 1, tzinfo=UTC)


def test_every_scenario_occurs_and_the_fraud_rate_is_realistic(small_data: Path) -> None:
    raw = pl.read_parquet(small_data)
    rate = float(raw["is_fraud"].cast(pl.Float64).mean())  # type: ignore[arg-type]
    assert 0.004 <= rate <= 0.012
    seen = set(raw["fraud_scenario"].unique().to_list())
    assert seen == set(SCENARIOS)
    assert (raw.filter(pl.col("fraud_scenario") > 0)["is_fraud"] == 1).all()


def test_card_testing_bursts_are_small_amounts_minutes_apart(small_data: Path) -> None:
    bursts = pl.read_parquet(small_data).filter(pl.col("fraud_scenario") == datagen.CARD_TESTING)
    assert bursts["amount"].le(5.0).all()
    gaps = (
        bursts.sort("customer_id", "timestamp")
        .with_columns(gap=pl.col("timestamp").diff().over("customer_id").dt.total_seconds())
        .drop_nulls("gap")
        .filter(pl.col("gap") < 3600)
    )
    assert gaps.height > 0
    assert gaps["gap"].lt(60).all()


def test_csv_output_round_trips_through_the_contract(tmp_path: Path) -> None:
    out = generate(GeneratorConfig(customers=50, terminals=100, days=5), tmp_path / "x.csv")
    df = load_contract_file(out.path, require_labels=True).frame
    assert df.height == out.rows


def test_large_runs_are_written_in_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(datagen, "ROWS_PER_CHUNK", 5_000)
    seen: list[int] = []
    result = generate(CFG, tmp_path / "c.parquet", progress=lambda d, n, r: seen.append(d))
    assert len(seen) > 3
    df = pl.read_parquet(result.path)
    assert df["timestamp"].is_sorted()
    assert df["transaction_id"].is_sorted()
    assert df["transaction_id"].n_unique() == result.rows
