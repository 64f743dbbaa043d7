"""The generated world looks like real payment traffic: heavy-tailed merchants, well-formed
contract v2 attributes, domestic card-present payments mostly, few devices per customer, and
attributes that tell fraud apart. Checked on the default size (about 515k rows)."""

from __future__ import annotations

import ipaddress
import json
import math
import re
from pathlib import Path

import polars as pl
import pytest

from fraudsvc import datagen
from fraudsvc.datagen import GenerateResult, GeneratorConfig, generate

# the rules of contract v2's optional columns (the real checker comes with the contract)
MCC = re.compile(r"^\d{4}$")
ALPHA2 = re.compile(r"^[A-Z]{2}$")
ALPHA3 = re.compile(r"^[A-Z]{3}$")
DEVICE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
KEY = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
CHANNELS = {"card_present", "contactless", "ecommerce", "moto", "recurring"}
EURO_AREA = {"FR", "IE", "LU", "NL", "DE", "ES", "IT", "BE", "PT"}


def valid_attributes(text: str) -> bool:
    value = json.loads(text)
    if not isinstance(value, dict) or len(value) > 32:
        return False
    for key, item in value.items():
        if not KEY.match(key):
            return False
        if isinstance(item, str):
            if len(item) > 256:
                return False
        elif isinstance(item, bool):
            continue
        elif not isinstance(item, int | float) or not math.isfinite(item):
            return False
    return True


def valid_ip(text: str) -> bool:
    try:
        return ipaddress.ip_address(text).is_global
    except ValueError:
        return False


@pytest.fixture(scope="module")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> GenerateResult:
    return generate(GeneratorConfig(), tmp_path_factory.mktemp("world") / "default.parquet")


@pytest.fixture(scope="module")
def data(default_run: GenerateResult) -> pl.DataFrame:
    return pl.read_parquet(default_run.path)


def share(frame: pl.DataFrame, condition: pl.Expr) -> float:
    return float(frame.select(condition.cast(pl.Float64).mean()).item())


def test_the_busiest_terminal_carries_over_one_percent(
    default_run: GenerateResult, data: pl.DataFrame
) -> None:
    counts = data["terminal_id"].value_counts(sort=True)["count"]
    assert counts[0] / data.height == pytest.approx(default_run.largest_terminal_share)
    assert default_run.largest_terminal_share >= 0.01
    # and a long tail: the top 1 % of terminals carry far more than 1 % of the payments
    top = counts.head(len(counts) // 100).sum() / data.height
    assert top > 0.15


def test_uniform_merchant_sizes_turn_the_heavy_tail_off(tmp_path: Path) -> None:
    uniform = generate(
        GeneratorConfig(merchant_sizes="uniform", fields="basic"), tmp_path / "u.parquet"
    )
    assert uniform.largest_terminal_share < 0.003
    assert 0.006 <= uniform.frauds / uniform.rows <= 0.012


def test_skimmers_mostly_hit_small_and_mid_sized_shops(tmp_path: Path) -> None:
    # fifty times the usual rate of compromised terminals, to see enough of them
    many = GeneratorConfig(compromised_terminal_rate=6.0, fields="basic")
    frame = pl.read_parquet(generate(many, tmp_path / "skimmed.parquet").path)
    volume = frame.group_by("terminal_id").agg(n=pl.len())
    busiest = volume.filter(pl.col("n") >= volume["n"].quantile(0.99))["terminal_id"]
    skimmed = frame.filter(pl.col("fraud_scenario") == datagen.COMPROMISED_TERMINAL)
    hit = skimmed["terminal_id"].unique()
    assert hit.len() > 1_000
    assert hit.is_in(busiest.implode()).mean() < 0.2  # type: ignore[operator]


def test_a_skimmed_busy_shop_has_only_one_till_skimmed(tmp_path: Path) -> None:
    # a dense world: 20 customers per shop, so that many shops are busy
    dense = GeneratorConfig(
        customers=20_000, terminals=1_000, days=14, compromised_terminal_rate=20.0, fields="basic"
    )
    frame = pl.read_parquet(generate(dense, tmp_path / "dense.parquet").path)
    per_day = (
        frame.group_by("terminal_id", pl.col("timestamp").dt.date())
        .agg(fraud=(pl.col("fraud_scenario") == datagen.COMPROMISED_TERMINAL).mean())
        .join(frame.group_by("terminal_id").agg(daily=pl.len() / dense.days), on="terminal_id")
        .filter(pl.col("fraud") > 0)
    )
    small = per_day.filter(pl.col("daily") < 20)
    busy = per_day.filter(pl.col("daily") >= 90)  # three tills or more
    assert small.height > 20
    assert busy.height > 20
    assert small["fraud"].mean() > 0.9  # type: ignore[operator]
    assert busy["fraud"].mean() < 0.4  # type: ignore[operator]


def test_fraud_rate_stays_realistic(default_run: GenerateResult) -> None:
    assert 0.008 <= default_run.frauds / default_run.rows <= 0.01
    assert all(count > 50 for count in default_run.by_scenario.values())


def test_every_attribute_value_has_the_contract_format(data: pl.DataFrame) -> None:
    for column, pattern in (
        ("merchant_category", MCC),
        ("merchant_country", ALPHA2),
        ("card_country", ALPHA2),
        ("currency", ALPHA3),
    ):
        assert data[column].null_count() == 0
        assert all(pattern.match(v) for v in data[column].unique()), column
    assert set(data["channel"].unique()) == CHANNELS
    devices = data["device_id"].drop_nulls().unique()
    assert all(DEVICE.match(v) for v in devices)
    assert all(valid_ip(v) for v in data["ip"].drop_nulls().unique())
    assert all(valid_attributes(v) for v in data["attributes"].drop_nulls().unique())
    assert data["attributes"].null_count() > data.height / 4  # extras on some rows, not all
    ipv6 = data["ip"].drop_nulls().str.contains(":")
    assert 0.1 < ipv6.mean() < 0.5  # type: ignore[operator]


def test_merchant_category_country_and_currency_are_fixed_per_terminal(
    data: pl.DataFrame,
) -> None:
    per_terminal = data.group_by("terminal_id").agg(
        pl.col("merchant_category", "merchant_country", "currency").n_unique()
    )
    assert (per_terminal.drop("terminal_id").max_horizontal() == 1).all()
    euro = pl.col("merchant_country").is_in(EURO_AREA)
    assert (data.filter(euro)["currency"] == "EUR").all()
    assert (data.filter(~euro)["currency"] != "EUR").all()
    assert share(data, pl.col("currency") != "EUR") > 0.002  # foreign shops in their currency


def test_payments_are_mostly_domestic_and_card_present(data: pl.DataFrame) -> None:
    assert share(data, pl.col("card_country") == "FR") > 0.95
    assert 0.9 < share(data, pl.col("merchant_country") == "FR") < 0.99
    channel = pl.col("channel")
    assert share(data, channel.is_in(["card_present", "contactless"])) > 0.7
    assert 0.3 < share(data, channel == "contactless") < 0.6
    assert 0.1 < share(data, channel == "ecommerce") < 0.25
    assert 0.01 < share(data, channel == "recurring") < 0.05
    assert 0.002 < share(data, channel == "moto") < 0.02
    # the contactless limit holds unless a phone wallet pays
    over = data.filter(channel == "contactless", pl.col("amount") > 50)
    assert over["attributes"].str.contains("wallet").all()


def test_device_and_ip_come_with_ecommerce_only(data: pl.DataFrame) -> None:
    online = data["channel"] == "ecommerce"
    assert (data["device_id"].is_not_null() == online).all()
    assert (data["ip"].is_not_null() == online).all()


def test_customers_shop_online_from_few_devices_and_addresses(data: pl.DataFrame) -> None:
    genuine = data.filter(pl.col("channel") == "ecommerce", pl.col("is_fraud") == 0)
    per_customer = genuine.group_by("customer_id").agg(
        devices=pl.col("device_id").n_unique(), ips=pl.col("ip").n_unique(), n=pl.len()
    )
    regular = per_customer.filter(pl.col("n") >= 10)
    assert regular["devices"].median() <= 2  # type: ignore[operator]
    assert regular["devices"].quantile(0.9) <= 4  # type: ignore[operator]
    assert regular["ips"].median() <= 4  # type: ignore[operator]


def test_subscriptions_bill_the_same_merchant_monthly_a_similar_amount(
    data: pl.DataFrame,
) -> None:
    bills = (
        data.filter(pl.col("channel") == "recurring")
        .sort("timestamp")
        .with_columns(
            days=pl.col("timestamp").diff().dt.total_days().over("customer_id", "terminal_id"),
            ratio=(pl.col("amount") / pl.col("amount").shift(1)).over("customer_id", "terminal_id"),
        )
        .drop_nulls("days")
    )
    assert bills.height > 1_000
    assert bills["days"].is_between(28, 31).all()
    assert bills["ratio"].is_between(0.6, 1.7).all()
    assert (bills["is_fraud"] == 0).all()


def test_attributes_tell_the_new_fraud_scenarios_apart(data: pl.DataFrame) -> None:
    """Fraud is far more frequent where the attribute features of the lead's feature set point:
    cross-border online payments, a device the customer has not used for 30 days, a merchant
    category the customer never paid in."""
    history = data.sort("timestamp").with_columns(
        cross_border=pl.col("merchant_country") != pl.col("card_country"),
        last_use=pl.col("timestamp").shift(1).over("customer_id", "device_id"),
        new_category=pl.int_range(pl.len()).over("customer_id", "merchant_category") == 0,
    )
    after_warmup = history.filter(
        pl.col("timestamp") >= pl.col("timestamp").min() + pl.duration(days=30)
    )
    online = after_warmup.filter(pl.col("channel") == "ecommerce").with_columns(
        new_device=pl.col("last_use").is_null()
        | (pl.col("timestamp") - pl.col("last_use") > pl.duration(days=30))
    )

    def lift(frame: pl.DataFrame, flag: str) -> float:
        rates = frame.group_by(flag).agg(pl.col("is_fraud").mean()).rows()
        by_flag = dict(rates)
        return float(by_flag[True]) / float(by_flag[False])

    assert lift(online, "new_device") > 5
    assert lift(online, "cross_border") > 2
    assert lift(after_warmup, "new_category") > 1.5
    # the first payment of a cash-out is in a category new to the customer far more often
    genuine_rate = after_warmup.filter(pl.col("is_fraud") == 0)["new_category"].mean()
    first_cash_out = (
        after_warmup.filter(pl.col("fraud_scenario") == datagen.RISKY_CATEGORIES)
        .group_by("customer_id")
        .first()
    )
    assert first_cash_out["new_category"].mean() > 5 * genuine_rate  # type: ignore[operator]
