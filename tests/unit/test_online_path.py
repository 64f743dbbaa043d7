"""The fast online path against its plain definition (tests/plain_online.py), bit for bit.

`split_nested` against `split`; the window read's arguments against the plain ones element for
element, and its plan against the plain plan on the same rows, for random declarations (windows
of any seconds and delay, nested bucket levels, entities whose spans interleave) and runs of
transactions crowding the boundaries of minutes, hours and days, so that the per-class
templates are built, reused and bypassed; and `online_vector` against the plain vector for
every kind of feature, with missing keys and spans.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraudsvc.db.windows import WindowRead
from fraudsvc.features import DECLARATION, Declaration, SpanValue, online_vector
from fraudsvc.features.declaration import (
    DAY,
    HOUR,
    Aggregate,
    Amount,
    Category,
    Differs,
    Entity,
    Feature,
    Hour,
    Night,
    Ratio,
    Weekend,
    Window,
)
from fraudsvc.features.default import BASELINE
from fraudsvc.features.spans import US_PER_SECOND, split, split_nested
from fraudsvc.transaction import Transaction
from tests.plain_online import pieces_of, plain_params, plain_values, plain_vector

EXAMPLES = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
NESTED = [(DAY, HOUR, 60), (DAY,), (HOUR, 60), (DAY, 6 * HOUR, HOUR, 15 * 60, 60), (60, 1)]
SECONDS = [1, 30, 59, 60, 61, 90, HOUR - 1, HOUR, HOUR + 1, DAY, DAY + 1, 7 * DAY, 30 * DAY]
DELAYS = [0, 0, 0, 1, 59, 60, HOUR, DAY, 7 * DAY]
ENTITIES = [
    Entity("customer", ("customer_id",)),
    Entity("terminal", ("terminal_id",)),
    Entity("customer_device", ("customer_id", "device_id")),
    Entity("customer_ip", ("customer_id", "ip")),
    Entity("channel", ("channel",)),
]
AGGREGATES: list[Aggregate] = ["count", "amount_sum", "amount_mean", "seconds_since_prev"]
AGGREGATES += ["fraud_count", "fraud_share"]

# offsets from T0 that put the transaction, or a window's end, on or next to a boundary
edges = st.sampled_from(
    [(w + k * 60) * US_PER_SECOND for w in (0, HOUR, DAY, 7 * DAY) for k in (0, 1, 59)]
).flatmap(lambda base: st.sampled_from([base - 1, base, base + 1, base + 999_999]))
offsets = st.one_of(edges, st.integers(0, 3 * DAY * US_PER_SECOND), st.integers(0, 120_000_000))


@st.composite
def declarations(draw: st.DrawFn) -> Declaration:
    entities = draw(st.lists(st.sampled_from(ENTITIES), min_size=1, max_size=4, unique=True))
    windows = draw(
        st.lists(
            st.tuples(
                st.sampled_from(entities),
                st.sampled_from(AGGREGATES),
                st.sampled_from(SECONDS),
                st.sampled_from(DELAYS),
            ),
            min_size=1,
            max_size=10,
        )
    )
    features: list[Feature] = [
        Window(f"w{i}", e.name, aggregate, seconds, delay)
        for i, (e, aggregate, seconds, delay) in enumerate(windows)
    ]
    return Declaration(
        version=2,
        entities=tuple(entities),
        features=tuple(features),
        label_delay=0,
        levels=draw(st.sampled_from(NESTED)),
    )


def transaction(offset_us: int, keys: dict[str, Any], n: int) -> Transaction:
    return Transaction(
        transaction_id=f"x{n}",
        timestamp=T0 + timedelta(microseconds=offset_us),
        customer_id=keys["customer_id"],
        terminal_id=keys["terminal_id"],
        amount_minor=keys["amount_minor"],
        channel=keys["channel"],
        device_id=keys["device_id"],
        ip=keys["ip"],
        card_country=keys["card_country"],
        merchant_country=keys["merchant_country"],
        merchant_category=keys["merchant_category"],
    )


key_values = st.fixed_dictionaries(
    {
        "customer_id": st.sampled_from(["C1", "C2"]),
        "terminal_id": st.sampled_from(["T1", "T2"]),
        "amount_minor": st.sampled_from([0, 1, 5790, 99_999_999]),
        "channel": st.sampled_from([None, "ecommerce", "moto"]),
        "device_id": st.sampled_from([None, "D1"]),
        "ip": st.sampled_from([None, "10.0.0.1", "2001:db8::1"]),
        "card_country": st.sampled_from([None, "FR", "DE"]),
        "merchant_country": st.sampled_from([None, "FR"]),
        "merchant_category": st.sampled_from([None, "5411", "0742"]),
    }
)
# runs of transactions: mostly close together (the same minute: templates), some far apart
runs = st.lists(
    st.tuples(st.one_of(offsets, st.integers(0, 59_999_999)), key_values), min_size=1, max_size=12
)


def rows_for(decl: Declaration, args: list[Any], rng: random.Random) -> list[tuple[Any, ...]]:
    """The window statement's rows for these arguments, in a shuffled order: one per piece
    (kind 0 the buckets, kind k the k-th entity's raw pieces) and the id's row."""
    rows: list[tuple[Any, ...]] = []
    for kind, i in pieces_of(decl, args):
        n = rng.choice([0, 0, 1, 2, 10**9])
        latest = rng.choice([None, -(10**12), 10**15, 10**15 + 1]) if n else None
        rows.append((kind, i, n, n * rng.choice([0, 1, 12345]), rng.randrange(n + 1), latest))
    rows.append((-1, 0, rng.choice([0, 1]), 0, 0, None))
    rng.shuffle(rows)
    return rows


def literal(arg: Any) -> Any:
    """An argument as the statement takes it: a list as its PostgreSQL array literal, element
    by element (the plain encoding; tests/integration/test_array_literals.py has PostgreSQL
    read them back)."""
    if not isinstance(arg, list):
        return arg
    if all(isinstance(v, bool) for v in arg) and arg:
        return "{" + ",".join("t" if v else "f" for v in arg) + "}"
    if all(isinstance(v, str) for v in arg) and arg:
        quoted = ['"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in arg]
        return "{" + ",".join(quoted) + "}"
    return "{" + ",".join(str(v) for v in arg) + "}"


def check_read(decl: Declaration, txs: list[Transaction], seed: int) -> None:
    read = WindowRead(decl)
    rng = random.Random(seed)
    for tx in txs:
        expected_args, expected_plan = plain_params(decl, tx)
        args, plan = read.plan.params(tx)
        assert args == expected_args, tx
        wire, wire_plan = read.params(tx)
        assert wire == [literal(a) for a in expected_args], tx
        assert wire_plan == plan
        rows = rows_for(decl, args, rng)
        assert read.values(rows, plan) == plain_values(decl, rows, expected_plan), tx


@EXAMPLES
@given(
    st.sampled_from(NESTED),
    st.integers(-(10**17), 10**17),
    st.integers(-(10**12), 10**12),
    st.sampled_from([0, 1, -1, 999_999]),
)
def test_split_nested_is_split(levels: tuple[int, ...], lo: int, length: int, shift: int) -> None:
    widths = tuple(w * US_PER_SECOND for w in levels)
    for a in (lo, lo // widths[-1] * widths[-1] + shift):
        for b in (a + length, a + widths[0] + shift, a + length // widths[-1] * widths[-1]):
            pieces = split(a, b, levels)
            assert split_nested(a, b, levels, widths) == (
                list(pieces.buckets),
                [(x, y, False) for x, y in pieces.raw],
            )


@EXAMPLES
@given(declarations(), runs, st.integers(0, 1000))
def test_the_window_read_is_the_plain_one(
    decl: Declaration, drawn: list[tuple[int, dict[str, Any]]], seed: int
) -> None:
    check_read(decl, [transaction(us, keys, n) for n, (us, keys) in enumerate(drawn)], seed)


@EXAMPLES
@given(runs, st.integers(0, 1000))
def test_the_default_declarations_window_reads_are_the_plain_ones(
    drawn: list[tuple[int, dict[str, Any]]], seed: int
) -> None:
    txs = [transaction(us, keys, n) for n, (us, keys) in enumerate(drawn)]
    check_read(DECLARATION, txs, seed)
    check_read(BASELINE, txs, seed)


def test_a_minute_of_live_transactions_shares_one_template_and_stays_exact() -> None:
    rng = random.Random(7)
    keys = {
        "customer_id": "C1",
        "terminal_id": "T1",
        "amount_minor": 100,
        "channel": "ecommerce",
        "device_id": "D1",
        "ip": "10.0.0.1",
        "card_country": "FR",
        "merchant_country": "FR",
        "merchant_category": "5411",
    }
    start = 17 * 60 * US_PER_SECOND  # a minute boundary
    offsets_us = [start + rng.randrange(1, 60 * US_PER_SECOND - 1) for _ in range(300)]
    offsets_us += [start, start - 1, start + 1, start + 60 * US_PER_SECOND - 1]
    txs = [transaction(us, keys, n) for n, us in enumerate(offsets_us)]
    check_read(DECLARATION, txs, seed=3)
    read = WindowRead(DECLARATION)
    plans = {id(read.params(tx)[1]) for tx in txs[:300]}
    assert len(plans) == 1  # one template: the plan is the same object


def test_spans_of_entities_that_interleave_keep_the_plain_order() -> None:
    decl = Declaration(
        version=2,
        entities=(ENTITIES[0], ENTITIES[1]),
        features=(
            Window("a", "customer", "count", DAY),
            Window("b", "terminal", "count", DAY, delay=HOUR),
            Window("c", "customer", "count", 7 * DAY),
            Window("d", "terminal", "fraud_share", 7 * DAY, delay=HOUR),
            Window("e", "customer", "count", HOUR),
        ),
        label_delay=0,
    )
    keys = {
        "customer_id": "C1",
        "terminal_id": "T1",
        "amount_minor": 1,
        "channel": None,
        "device_id": None,
        "ip": None,
        "card_country": None,
        "merchant_country": None,
        "merchant_category": None,
    }
    txs = [transaction(us, keys, n) for n, us in enumerate([5, 1_000_017, 2_000_003, 60_000_000])]
    check_read(decl, txs, seed=5)


@st.composite
def vector_declarations(draw: st.DrawFn) -> Declaration:
    base = draw(declarations())
    names = [f.name for f in base.features]
    extra: list[Feature] = [
        Amount("amount"),
        Hour("hour"),
        Weekend("weekend"),
        Night("night", end_hour=draw(st.integers(1, 24))),
        Category("channel_code", field="channel"),
        Category("country_code", field="card_country"),
        Category("mcc_code", field="merchant_category"),
        Differs("cross_border", left="card_country", right="merchant_country"),
    ]
    names += [f.name for f in extra]
    ratios: list[Feature] = [
        Ratio(f"r{i}", draw(st.sampled_from(names)), draw(st.sampled_from(names)), when_zero)
        for i, when_zero in enumerate(draw(st.lists(st.sampled_from([1.0, 0.0, -2.5]))))
    ]
    features = draw(st.permutations([*base.features, *extra]))
    return Declaration(
        version=2,
        entities=base.entities,
        features=(*features, *ratios),
        label_delay=0,
        levels=base.levels,
    )


span_values = st.one_of(
    st.none(),
    st.builds(
        SpanValue,
        st.sampled_from([0, 1, 2, 3, 10**6]),
        st.sampled_from([0, 1, 5790, 10**13]),
        st.sampled_from([0, 1, 2]),
        st.one_of(st.none(), st.integers(-(10**15), 2 * 10**15)),
    ),
)


@EXAMPLES
@given(vector_declarations(), offsets, key_values, st.data())
def test_online_vector_is_the_plain_one(
    decl: Declaration, offset_us: int, keys: dict[str, Any], data: st.DataObject
) -> None:
    tx = transaction(offset_us, keys, 0)
    spans = {span: data.draw(span_values) for span in decl.spans}
    fast, plain = online_vector(decl, tx, spans), plain_vector(decl, tx, spans)
    assert [v.hex() for v in fast] == [v.hex() for v in plain]


def test_a_declaration_naming_a_feature_twice_gives_the_plain_vector() -> None:
    decl = Declaration(
        version=2,
        entities=(ENTITIES[0],),
        features=(
            Amount("x"),
            Window("n", "customer", "count", HOUR),
            Ratio("r", "x", "n"),
            Hour("x"),
            Ratio("s", "x", "n"),
        ),
    )
    tx = transaction(
        0,
        {"customer_id": "C1", "terminal_id": "T1", "amount_minor": 250}
        | dict.fromkeys(
            ["channel", "device_id", "ip", "card_country", "merchant_country", "merchant_category"]
        ),
        0,
    )
    spans = {span: SpanValue(3, 10, 0, None) for span in decl.spans}
    assert online_vector(decl, tx, spans) == plain_vector(decl, tx, spans)
