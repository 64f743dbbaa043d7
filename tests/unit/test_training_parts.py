"""The pure parts of training: the split plan, thresholds, metrics, drift reference, decisions."""

from __future__ import annotations

from datetime import UTC, date, datetime

import msgspec
import numpy as np
import polars as pl
import pytest

from fraudsvc.decision import Thresholds, decide
from fraudsvc.model.reference import Reference, build_reference, psi
from fraudsvc.training.metrics import card_precision
from fraudsvc.training.split import SplitError, SplitOptions, plan_split
from fraudsvc.training.thresholds import choose_thresholds

FIRST = datetime(2026, 1, 1, 0, 5, tzinfo=UTC)
LAST = datetime(2026, 4, 30, 23, 59, tzinfo=UTC)


def test_default_split_leaves_label_delay_gaps() -> None:
    plan = plan_split(FIRST, LAST, SplitOptions())
    assert str(plan.test) == "2026-04-17..2026-04-30 (14 d)"
    assert str(plan.valid) == "2026-03-27..2026-04-09 (14 d)"
    assert str(plan.fit) == "2026-01-31..2026-03-19 (48 d)"
    assert (plan.valid.start - plan.fit.end).days == 7
    assert (plan.test.start - plan.valid.end).days == 7


def test_split_from_explicit_dates_reproduces_a_protocol() -> None:
    plan = plan_split(
        FIRST,
        LAST,
        SplitOptions(
            train_start=date(2026, 2, 1),
            train_end=date(2026, 3, 31),
            test_start=date(2026, 4, 8),
            test_end=date(2026, 4, 14),
            valid_days=7,
        ),
    )
    assert str(plan.fit) == "2026-02-01..2026-03-17 (45 d)"
    assert str(plan.valid) == "2026-03-25..2026-03-31 (7 d)"
    assert str(plan.test) == "2026-04-08..2026-04-14 (7 d)"


def test_a_split_that_does_not_fit_the_data_is_refused() -> None:
    with pytest.raises(SplitError, match="shorter than 7 days"):
        plan_split(FIRST, LAST, SplitOptions(warmup_days=100))
    with pytest.raises(SplitError, match="outside the data"):
        plan_split(FIRST, LAST, SplitOptions(test_end=date(2026, 6, 1)))


def test_thresholds_follow_the_written_rule() -> None:
    rng = np.random.default_rng(0)
    labels = np.r_[np.zeros(9_800), np.ones(200)].astype(np.int64)
    scores = np.r_[rng.uniform(0, 0.6, 9_800), rng.uniform(0.4, 1.0, 200)]
    meta, report = choose_thresholds(scores, labels, block_precision=0.9, review_budget=0.01)
    assert 0 <= meta.review <= meta.block <= 1
    assert report["valid_block_precision"] >= 0.9
    assert report["valid_review_rate"] <= 0.01
    assert labels[scores >= meta.block].mean() >= 0.9
    in_review = (scores >= meta.review) & (scores < meta.block)
    assert in_review.mean() <= 0.01
    # one step lower would break the budget: the review threshold is the lowest that fits
    lower = scores[scores < meta.review].max()
    assert ((scores >= lower) & (scores < meta.block)).mean() > 0.01


def test_unreachable_block_precision_blocks_nothing() -> None:
    scores = np.linspace(0, 1, 1000)
    labels = (np.arange(1000) % 2).astype(np.int64)  # precision stays near 0.5
    meta, _ = choose_thresholds(scores, labels, block_precision=0.99, review_budget=0.05)
    assert meta.block == 1.0
    assert meta.review <= meta.block


def test_decisions_at_the_thresholds() -> None:
    t = Thresholds(review=0.2, block=0.8)
    assert [decide(s, t) for s in (0.0, 0.2, 0.79, 0.8, 1.0)] == [
        "allow",
        "review",
        "review",
        "block",
        "block",
    ]
    with pytest.raises(ValueError, match="review <= block"):
        Thresholds(review=0.9, block=0.1)


def test_card_precision_counts_compromised_customers_per_day() -> None:
    day = datetime(2026, 1, 1, tzinfo=UTC)
    df = pl.DataFrame(
        {
            "timestamp": [day] * 4,
            "customer_id": ["a", "a", "b", "c"],
            "is_fraud": [0, 1, 0, 0],
        }
    )
    cp, best = card_precision(df, np.array([0.9, 0.1, 0.5, 0.2]), k=2)
    assert cp == 0.5  # top two customers: a (fraud that day) and b
    assert best == 0.5


def test_psi_is_zero_on_the_reference_and_grows_with_shift() -> None:
    rng = np.random.default_rng(1)
    base = rng.normal(0, 1, 20_000)
    ref = build_reference(base)
    assert psi(ref, rng.normal(0, 1, 20_000)) < 0.01
    assert psi(ref, rng.normal(1, 1, 20_000)) > 0.2
    binary = build_reference(np.r_[np.zeros(900), np.ones(100)])
    assert psi(binary, np.r_[np.zeros(500), np.ones(500)]) > 0.2


def test_categorical_drift_is_a_change_in_category_shares() -> None:
    rng = np.random.default_rng(2)
    channels = rng.choice([0.0, 1.0, 2.0, 3.0, 4.0], p=[0.4, 0.4, 0.15, 0.03, 0.02], size=20_000)
    ref = build_reference(channels, categorical=True)
    assert ref.kind == "categorical"
    assert ref.categories == [0.0, 1.0, 2.0, 3.0, 4.0]
    same = rng.choice([0.0, 1.0, 2.0, 3.0, 4.0], p=[0.4, 0.4, 0.15, 0.03, 0.02], size=20_000)
    assert psi(ref, same) < 0.01
    more_online = rng.choice(
        [0.0, 1.0, 2.0, 3.0, 4.0], p=[0.25, 0.25, 0.45, 0.03, 0.02], size=5_000
    )
    assert psi(ref, more_online) > 0.2
    unseen = np.full(5_000, 9.0)  # a code the reference never saw lands in "the others"
    assert psi(ref, unseen) > 1.0


def test_a_field_sent_less_often_is_drift_through_the_missing_share() -> None:
    rng = np.random.default_rng(3)
    counts = rng.integers(1, 5, size=20_000).astype(float)
    counts[rng.random(20_000) < 0.8] = np.nan  # 80 % card-present: no device
    ref = build_reference(counts)
    assert ref.missing
    stable = counts.copy()
    rng.shuffle(stable)
    assert psi(ref, stable) < 0.01
    fewer_devices = counts.copy()
    fewer_devices[rng.random(20_000) < 0.9] = np.nan
    assert psi(ref, fewer_devices) > 0.05


def test_a_reference_of_an_older_model_reads_as_before() -> None:
    old = msgspec.json.decode(
        b'{"edges": [1.0, 2.0], "proportions": [0.2, 0.5, 0.3]}', type=Reference
    )
    assert not old.missing
    assert psi(old, np.array([0.5, 1.5, 1.6, 1.7, 1.8, 3.0, 3.1, 3.2, 0.9, 1.1])) < 0.01
