"""The feature definitions on hand-made timelines, and batch == brute force on generated data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from fraudsvc.contract import load_contract_file
from fraudsvc.features import DECLARATION, Declaration, batch_features, feature_matrix
from fraudsvc.features.default import BASELINE
from tests.timeline import assert_same_vectors, at, frame, reference_vector

DAY = 86_400.0


def features_of(df: pl.DataFrame, tx: str) -> dict[str, float]:
    out = batch_features(df).filter(pl.col("transaction_id") == tx)
    return {n: float(out[n][0]) for n in BASELINE.names}


@pytest.fixture
def customer_timeline() -> pl.DataFrame:
    return frame(
        [
            ("a", at(0), "C1", "T1", 10.0, 0),
            ("b", at(hours=1), "C1", "T1", 20.0, 0),
            ("c", at(hours=1), "C1", "T2", 40.0, 0),  # same instant as b
            ("d", at(days=1, hours=1), "C1", "T1", 30.0, 0),
            ("x", at(hours=1), "C2", "T1", 999.0, 0),  # another customer
        ]
    )


def test_customer_window_excludes_its_exact_lower_edge(customer_timeline: pl.DataFrame) -> None:
    b = features_of(customer_timeline, "b")
    assert b["customer_nb_tx_1h"] == 1.0  # a is exactly 1 h before: outside (t - 1h, t)
    assert b["customer_mean_amount_1h"] == 20.0
    assert b["customer_nb_tx_1d"] == 2.0
    assert b["customer_mean_amount_1d"] == 15.0


def test_simultaneous_transactions_do_not_see_each_other(customer_timeline: pl.DataFrame) -> None:
    b, c = features_of(customer_timeline, "b"), features_of(customer_timeline, "c")
    assert b["customer_nb_tx_1d"] == c["customer_nb_tx_1d"] == 2.0
    assert c["customer_mean_amount_1d"] == 25.0  # a and c itself, not b
    assert b["customer_seconds_since_prev"] == c["customer_seconds_since_prev"] == 3600.0


def test_day_window_edge_and_longer_windows(customer_timeline: pl.DataFrame) -> None:
    d = features_of(customer_timeline, "d")
    assert d["customer_nb_tx_1d"] == 1.0  # b and c are exactly one day earlier
    assert d["customer_nb_tx_7d"] == 4.0
    assert d["customer_mean_amount_30d"] == 25.0
    assert d["amount_over_customer_mean_30d"] == 30.0 / 25.0
    assert d["customer_seconds_since_prev"] == DAY


def test_first_transaction_has_only_itself(customer_timeline: pl.DataFrame) -> None:
    a = features_of(customer_timeline, "a")
    assert a["customer_nb_tx_30d"] == 1.0
    assert a["customer_mean_amount_30d"] == 10.0
    assert a["amount_over_customer_mean_30d"] == 1.0
    assert a["customer_seconds_since_prev"] == 30 * DAY


def test_calendar_flags_are_utc() -> None:
    df = frame(
        [
            ("sat", at(days=5), "C1", "T1", 1.0, 0),  # T0 is a Monday noon
            ("five", at(hours=-7), "C2", "T1", 1.0, 0),  # Monday 05:00
            ("six", at(hours=-6), "C3", "T1", 1.0, 0),  # Monday 06:00
        ]
    )
    assert features_of(df, "sat")["is_weekend"] == 1.0
    assert features_of(df, "five")["is_night"] == 1.0
    assert features_of(df, "five")["is_weekend"] == 0.0
    assert features_of(df, "six")["is_night"] == 0.0


def test_terminal_window_ends_exactly_one_label_delay_back() -> None:
    df = frame(
        [
            ("fraud", at(0), "C1", "T1", 5.0, 1),
            ("on_edge", at(days=7), "C2", "T1", 5.0, 0),
            ("just_before", at(days=7, seconds=-1), "C3", "T1", 5.0, 0),
        ]
    )
    edge = features_of(df, "on_edge")
    assert edge["terminal_nb_tx_1d"] == 1.0  # ts == t - D is inside (t - D - w, t - D]
    assert edge["terminal_risk_1d"] == 1.0
    before = features_of(df, "just_before")
    assert before["terminal_nb_tx_1d"] == 0.0
    assert before["terminal_risk_30d"] == 0.0


def test_a_label_younger_than_the_delay_never_changes_terminal_risk() -> None:
    def timeline(young_label: int) -> pl.DataFrame:
        return frame(
            [
                ("old", at(0), "C1", "T1", 5.0, 1),
                ("young", at(days=3), "C2", "T1", 5.0, young_label),
                ("now", at(days=8), "C3", "T1", 5.0, 0),
            ]
        )

    genuine, fraud = features_of(timeline(0), "now"), features_of(timeline(1), "now")
    assert genuine == fraud
    assert genuine["terminal_nb_tx_30d"] == 1.0  # only "old" is at least 7 days back
    assert genuine["terminal_risk_30d"] == 1.0


def test_batch_features_equal_the_definitions_on_generated_data(small_data: Path) -> None:
    df = load_contract_file(small_data, require_labels=True).frame
    batch = feature_matrix(batch_features(df))
    rng = np.random.default_rng(0)
    rows = np.r_[
        rng.choice(df.height, size=150, replace=False), np.arange(df.height - 20, df.height)
    ]
    expected = np.array([reference_vector(df, int(i)) for i in rows])
    assert_same_vectors(batch[rows], expected, DECLARATION.names)


def test_batch_features_keep_row_order_and_add_every_feature(small_data: Path) -> None:
    df = load_contract_file(small_data, require_labels=True).frame
    out = batch_features(df)
    assert out["transaction_id"].equals(df["transaction_id"])
    assert set(DECLARATION.names) <= set(out.columns)
    baseline = out.select(BASELINE.names)
    assert baseline.null_count().sum_horizontal().item() == 0


def test_the_declaration_round_trips_and_its_hash_names_every_change() -> None:
    again = Declaration.from_dict(DECLARATION.to_dict())
    assert again == DECLARATION
    assert again.hash == DECLARATION.hash
    other = Declaration.from_dict({**DECLARATION.to_dict(), "label_delay": 3 * 86_400})
    assert other.hash != DECLARATION.hash
    assert DECLARATION.problems() == []


def test_a_declaration_this_code_cannot_compute_says_why() -> None:
    data = DECLARATION.to_dict()
    data["label_delay"] = 30 * 86_400  # terminal risk now reads labels younger than the delay
    data["entities"] = [*data["entities"], {"name": "odd", "fields": ["amount"]}]
    data["features"] = [
        *data["features"],
        {"kind": "ratio", "name": "r", "numerator": "nope", "denominator": "amount"},
    ]
    problems = Declaration.from_dict(data).problems()
    assert any("terminal_risk_1d" in p and "label delay" in p for p in problems)
    assert any("entity odd" in p for p in problems)
    assert any(p.startswith("feature r:") for p in problems)


def test_the_payment_attributes_features_on_a_taken_over_card() -> None:
    """A card's usual device, then a new device from abroad: first use counts 1, the usual one
    counts up; a card-present payment has no device (missing); categories are fixed codes."""
    df = frame(
        [
            ("usual1", at(0), "C1", "T1", 20.0, 0),
            ("usual2", at(days=1), "C1", "T2", 25.0, 0),
            ("new", at(days=2), "C1", "T3", 900.0, 1),
            ("shop", at(days=2, hours=1), "C1", "T4", 15.0, 0),
            ("late", at(days=40), "C1", "T2", 25.0, 0),
        ],
        [
            {"device_id": "D1", "ip": "10.0.0.1", "channel": "ecommerce",
             "merchant_category": "5411", "card_country": "FR", "merchant_country": "FR"},
            {"device_id": "D1", "ip": "10.0.0.1", "channel": "ecommerce",
             "merchant_category": "5411", "card_country": "FR", "merchant_country": "FR"},
            {"device_id": "D9", "ip": "203.0.113.9", "channel": "ecommerce",
             "merchant_category": "5732", "card_country": "FR", "merchant_country": "GB"},
            {"channel": "card_present", "merchant_category": "5411", "card_country": "FR"},
            {"device_id": "D1", "ip": "10.0.0.1", "channel": "ecommerce",
             "merchant_category": "5411", "card_country": "FR", "merchant_country": "FR"},
        ],
    )  # fmt: skip
    out = batch_features(df).select("transaction_id", *DECLARATION.names)
    f = {row["transaction_id"]: row for row in out.iter_rows(named=True)}
    assert f["usual2"]["customer_device_nb_tx_30d"] == 2.0
    assert f["usual2"]["customer_ip_nb_tx_30d"] == 2.0
    assert f["new"]["customer_device_nb_tx_30d"] == 1.0  # a device new to the card
    assert f["new"]["customer_ip_nb_tx_30d"] == 1.0
    assert f["new"]["customer_mcc_nb_tx_30d"] == 1.0  # first electronics purchase
    assert f["shop"]["customer_mcc_nb_tx_30d"] == 3.0  # groceries: usual1, usual2 and this
    assert f["late"]["customer_device_nb_tx_30d"] == 1.0  # the earlier uses are 38 days back
    assert f["new"]["cross_border"] == 1.0
    assert f["usual1"]["cross_border"] == 0.0
    assert f["shop"]["cross_border"] is None  # no merchant country: missing
    assert f["shop"]["customer_device_nb_tx_30d"] is None  # card present: no device
    assert f["new"]["channel_code"] == 2.0  # position in the contract's channel list
    assert f["shop"]["channel_code"] == 0.0
    assert f["new"]["merchant_category_code"] == 5732.0
    assert_same_vectors(
        feature_matrix(out),
        np.array([reference_vector(df, i) for i in range(df.height)]),
        DECLARATION.names,
    )
