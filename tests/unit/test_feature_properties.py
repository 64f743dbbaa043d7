"""Properties of the features on random timelines (hypothesis): the batch path equals the
definitions evaluated row by row, no label younger than the delay changes any feature, and the
windows behave at their edges. Timestamps are drawn around the window lengths on purpose, so
exact edges and simultaneous transactions come up often."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraudsvc.features import DECLARATION, batch_features, feature_matrix
from fraudsvc.features.default import CUSTOMER_WINDOWS, TERMINAL_WINDOWS
from tests.timeline import T0, assert_same_vectors, frame, payment_attributes, reference_vector

DAY = 86_400
EDGES = [0, 1, 3_600, 3_599, 3_601, DAY, DAY - 1, DAY + 1, 7 * DAY, 8 * DAY, 30 * DAY, 37 * DAY]

offsets = st.one_of(
    st.sampled_from(EDGES),
    st.integers(min_value=0, max_value=40 * DAY),
)
rows = st.lists(
    st.tuples(
        offsets,
        st.sampled_from(["C1", "C2", "C3"]),
        st.sampled_from(["T1", "T2"]),
        st.sampled_from([0.0, 0.01, 9.99, 10.0, 57.3, 250.0, 999_999.99]),
        st.sampled_from([0, 0, 0, 1]),
        payment_attributes,
    ),
    min_size=1,
    max_size=30,
)
Drawn = list[tuple[int, str, str, float, int, dict[str, str | None]]]
EXAMPLES = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def timeline(drawn: Drawn) -> pl.DataFrame:
    return frame(
        [
            (f"x{i:03d}", T0 + timedelta(seconds=s), c, t, a, f)
            for i, (s, c, t, a, f, _) in enumerate(drawn)
        ],
        [dict(extra) for *_, extra in drawn],
    )


@EXAMPLES
@given(rows)
def test_batch_features_equal_the_definitions_on_any_timeline(
    drawn: Drawn,
) -> None:
    df = timeline(drawn)
    batch = feature_matrix(batch_features(df))
    expected = np.array([reference_vector(df, i) for i in range(df.height)])
    assert_same_vectors(batch, expected, DECLARATION.names)


@EXAMPLES
@given(rows, st.data())
def test_no_label_younger_than_the_delay_changes_a_feature(
    drawn: Drawn, data: st.DataObject
) -> None:
    df = timeline(drawn)
    i = data.draw(st.integers(min_value=0, max_value=df.height - 1))
    t = df["timestamp"][i]
    young = pl.col("timestamp") > t - timedelta(seconds=DECLARATION.label_delay)
    flipped = df.with_columns(
        pl.when(young).then(1 - pl.col("is_fraud")).otherwise(pl.col("is_fraud")).alias("is_fraud")
    )
    before = batch_features(df).select(DECLARATION.names).row(i)
    after = batch_features(flipped).select(DECLARATION.names).row(i)
    assert before == after


@EXAMPLES
@given(
    st.sampled_from(CUSTOMER_WINDOWS),
    st.sampled_from([-1, 0, 1]),
)
def test_a_customer_window_holds_what_is_strictly_inside_it(
    window: tuple[str, int], shift_us: int
) -> None:
    label, seconds = window
    gap = timedelta(seconds=seconds, microseconds=shift_us)
    df = frame(
        [
            ("early", T0, "C1", "T1", 10.0, 0),
            ("late", T0 + gap, "C1", "T1", 30.0, 0),
        ]
    )
    late = batch_features(df).filter(pl.col("transaction_id") == "late")
    expected = 2.0 if gap < timedelta(seconds=seconds) else 1.0
    assert late[f"customer_nb_tx_{label}"][0] == expected
    assert late[f"customer_mean_amount_{label}"][0] == (20.0 if expected == 2.0 else 30.0)


@EXAMPLES
@given(
    st.sampled_from(TERMINAL_WINDOWS),
    st.sampled_from([-1, 0, 1]),
    st.sampled_from([-1, 0, 1]),
)
def test_a_terminal_window_is_closed_at_the_delay_and_open_at_its_far_end(
    window: tuple[str, int], near_us: int, far_us: int
) -> None:
    """A fraud at t - D - near counts when 0 <= D + near; at t - D - w - far it counts when
    that is strictly after t - D - w."""
    label, seconds = window
    delay = timedelta(seconds=DECLARATION.label_delay)
    near = timedelta(microseconds=near_us)
    far = delay + timedelta(seconds=seconds, microseconds=far_us)
    now = T0 + timedelta(days=60)
    df = frame(
        [
            ("near", now - delay - near, "C1", "T1", 1.0, 1),
            ("far", now - far, "C2", "T1", 1.0, 1),
            ("now", now, "C3", "T1", 1.0, 0),
        ]
    )
    out = batch_features(df).filter(pl.col("transaction_id") == "now")
    expected = int(near_us >= 0) + int(far_us < 0)
    assert out[f"terminal_nb_tx_{label}"][0] == float(expected)
    assert out[f"terminal_risk_{label}"][0] == (1.0 if expected else 0.0)
