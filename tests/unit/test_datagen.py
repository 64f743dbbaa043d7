"""The generator: seeded, contract-valid, chunked, with every fraud scenario at a realistic rate."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from fraudsvc import datagen
from fraudsvc.cli import main
from fraudsvc.contract import load_contract_file
from fraudsvc.datagen import SCENARIOS, GeneratorConfig, generate
from fraudsvc.datagen.config import ATTRIBUTE_COLUMNS, BASIC_COLUMNS, FULL_COLUMNS

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


def test_basic_fields_are_the_same_payments_without_the_attributes(tmp_path: Path) -> None:
    full = pl.read_parquet(generate(CFG, tmp_path / "full.parquet").path)
    basic_cfg = GeneratorConfig(customers=300, terminals=600, days=40, seed=3, fields="basic")
    basic = pl.read_parquet(generate(basic_cfg, tmp_path / "basic.parquet").path)
    assert full.columns == list(FULL_COLUMNS)
    assert basic.columns == list(BASIC_COLUMNS)
    assert basic.equals(full.select(BASIC_COLUMNS))


def test_output_meets_the_contract_in_time_order(small_data: Path) -> None:
    checked = load_contract_file(small_data, require_labels=True)
    raw = pl.read_parquet(small_data)
    assert raw["timestamp"].is_sorted()
    assert raw["transaction_id"].n_unique() == raw.height
    # the contract (v2) checks every attribute column; only the scenario is outside it
    assert checked.ignored_columns == ("fraud_scenario",)
    for column in ATTRIBUTE_COLUMNS:
        assert checked.frame[column].null_count() < checked.frame.height, column
    first = raw["timestamp"].min()
    assert isinstance(first, datetime)
    assert first >= datetime(2026, 1, 1, tzinfo=UTC)


def test_rows_are_sorted_by_time_customer_terminal_amount(small_data: Path) -> None:
    raw = pl.read_parquet(small_data)
    keys = ["timestamp", "customer_id", "terminal_id", "amount"]
    assert raw.select(keys).equals(raw.select(keys).sort(keys))
    assert raw["transaction_id"].is_sorted()


def test_every_scenario_occurs_and_the_fraud_rate_is_realistic(small_data: Path) -> None:
    raw = pl.read_parquet(small_data)
    rate = float(raw["is_fraud"].cast(pl.Float64).mean())  # type: ignore[arg-type]
    assert 0.006 <= rate <= 0.012
    seen = set(raw["fraud_scenario"].unique().to_list())
    assert seen == set(SCENARIOS)
    assert (raw.filter(pl.col("fraud_scenario") > 0)["is_fraud"] == 1).all()
    assert (raw.filter(pl.col("fraud_scenario") == 0)["is_fraud"] == 0).all()


def test_card_testing_bursts_are_small_online_amounts_seconds_apart(small_data: Path) -> None:
    bursts = pl.read_parquet(small_data).filter(pl.col("fraud_scenario") == datagen.CARD_TESTING)
    assert bursts["amount"].le(5.0).all()
    assert (bursts["channel"] == "ecommerce").all()
    gaps = (
        bursts.sort("customer_id", "timestamp")
        .with_columns(gap=pl.col("timestamp").diff().over("customer_id").dt.total_seconds())
        .drop_nulls("gap")
        .filter(pl.col("gap") < 3600)
    )
    assert gaps.height > 0
    assert gaps["gap"].lt(60).all()


def test_cnp_fraud_abroad_is_online_from_a_foreign_connection_in_bursts(
    small_data: Path,
) -> None:
    raw = pl.read_parquet(small_data)
    cnp = raw.filter(pl.col("fraud_scenario") == datagen.CNP_ABROAD)
    assert cnp.height >= 50
    assert (cnp["channel"] == "ecommerce").all()
    assert cnp["device_id"].null_count() == 0
    ip_country = cnp["attributes"].str.json_path_match("$.ip_country").drop_nulls()
    assert ip_country.len() > 0
    assert (ip_country != "FR").all()
    abroad = cnp.select((pl.col("merchant_country") != pl.col("card_country")).mean()).item()
    assert abroad > 0.5
    # several payments of one stolen card within hours, from one device
    per_device = cnp.group_by("device_id").agg(
        n=pl.len(),
        customers=pl.col("customer_id").n_unique(),
        hours=(pl.col("timestamp").max() - pl.col("timestamp").min()).dt.total_hours(),
    )
    assert (per_device["customers"] == 1).all()
    assert (per_device["n"] > 1).mean() > 0.4  # type: ignore[operator]
    assert per_device.filter(pl.col("n") > 1)["hours"].median() < 6  # type: ignore[operator]
    # and a device never seen for that customer before
    genuine_devices = raw.filter(pl.col("is_fraud") == 0).select("customer_id", "device_id")
    assert cnp.join(genuine_devices, on=["customer_id", "device_id"]).height == 0


def test_high_risk_category_fraud_is_concentrated_in_those_categories(small_data: Path) -> None:
    raw = pl.read_parquet(small_data)
    risky_mccs = ["5732", "4829", "7995", "6540", "5944", "5816"]
    in_risky = pl.col("merchant_category").is_in(risky_mccs).mean()
    fraud = raw.filter(pl.col("fraud_scenario") == datagen.RISKY_CATEGORIES)
    assert fraud.height >= 50
    assert fraud.select(in_risky).item() > 0.7
    assert raw.filter(pl.col("is_fraud") == 0).select(in_risky).item() < 0.05


def test_csv_output_round_trips_through_the_contract(tmp_path: Path) -> None:
    out = generate(GeneratorConfig(customers=50, terminals=100, days=5), tmp_path / "x.csv")
    df = load_contract_file(out.path, require_labels=True).frame
    assert df.height == out.rows
    text = pl.read_csv(out.path, infer_schema=False)
    parquet = generate(GeneratorConfig(customers=50, terminals=100, days=5), tmp_path / "x.pq")
    assert text.select(ATTRIBUTE_COLUMNS).equals(
        pl.read_parquet(parquet.path).select(ATTRIBUTE_COLUMNS)
    )


def test_large_runs_are_written_in_chunks(tmp_path: Path) -> None:
    seen: list[int] = []
    result = generate(
        CFG, tmp_path / "c.parquet", progress=lambda d, n, r: seen.append(d), rows_per_chunk=5_000
    )
    assert len(seen) > 3
    df = pl.read_parquet(result.path)
    assert df["timestamp"].is_sorted()
    assert df["transaction_id"].is_sorted()
    assert df["transaction_id"].n_unique() == result.rows
    assert set(df["fraud_scenario"].unique()) == set(SCENARIOS)


def test_generate_command_writes_basic_uniform_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FRAUDSVC_DATA_DIR", str(tmp_path))
    out = tmp_path / "g.parquet"
    argv = ["generate", "--customers", "50", "--terminals", "100", "--days", "5"]
    argv += ["--merchant-sizes", "uniform", "--fields", "basic", "--out", str(out)]
    assert main(argv) == 0
    assert pl.read_parquet(out).columns == list(BASIC_COLUMNS)
    expected = GeneratorConfig(
        customers=50, terminals=100, days=5, merchant_sizes="uniform", fields="basic"
    )
    assert pl.read_parquet(out).equals(
        pl.read_parquet(generate(expected, tmp_path / "same.parquet").path)
    )
    assert "busiest terminal" in capsys.readouterr().out


def test_unknown_options_are_refused() -> None:
    with pytest.raises(ValueError, match="merchant_sizes"):
        GeneratorConfig(merchant_sizes="pareto")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fields"):
        GeneratorConfig(fields="all")  # type: ignore[arg-type]
