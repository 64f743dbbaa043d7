"""`telemetry.collectors` renders exactly what aioprometheus's own Counter and Histogram render
after the same updates (aioprometheus is the definition)."""

from __future__ import annotations

import math
import random

import pytest
from aioprometheus.collectors import Counter as PlainCounter
from aioprometheus.collectors import Histogram as PlainHistogram
from aioprometheus.collectors import Registry
from aioprometheus.histogram import Histogram as PlainSeries
from aioprometheus.renderer import render

from fraudsvc.telemetry.collectors import Counter, Histogram, HistogramSeries
from fraudsvc.telemetry.metrics import STAGE_BUCKETS

BOUNDS = STAGE_BUCKETS
EDGES = [*BOUNDS, 0.0, -1.0, 1e9, 5e-5, 0.0010000001]


def text(registry: Registry) -> str:
    content, _ = render(registry, [])
    return content.decode()


def label_sets(rng: random.Random) -> list[dict[str, str]]:
    return [
        {},
        {"stage": "history"},
        {"stage": "score"},
        {"method": "POST", "route": "/v1/transactions", "status": "201"},
        {"route": "/v1/transactions", "status": "201", "method": "POST"},  # same series
        {"rule": f"r{rng.randrange(3)}", "mode": "live", "action": "block"},
    ]


@pytest.mark.parametrize("seed", range(5))
def test_the_same_updates_render_the_same_text(seed: int) -> None:
    rng = random.Random(seed)
    plain, fast = Registry(), Registry()
    plain_h = PlainHistogram("h_seconds", "a histogram", registry=plain, buckets=BOUNDS)
    fast_h = Histogram("h_seconds", "a histogram", registry=fast, buckets=BOUNDS)
    plain_c = PlainCounter("c_total", "a counter", registry=plain)
    fast_c = Counter("c_total", "a counter", registry=fast)
    for _ in range(2_000):
        labels = rng.choice(label_sets(rng))
        value = rng.choice(EDGES) if rng.random() < 0.2 else rng.expovariate(200.0)
        plain_h.observe(labels, value)
        fast_h.observe(labels, value)
        if rng.random() < 0.5:
            plain_c.inc(labels)
            fast_c.inc(labels)
        else:
            step = rng.choice([0, 2, 0.5])
            plain_c.add(labels, step)
            fast_c.add(labels, step)
    assert text(fast) == text(plain)
    assert fast_c.get({"stage": "score"}) == plain_c.get({"stage": "score"})
    assert fast_h.get({"stage": "history"}) == plain_h.get({"stage": "history"})


def test_a_series_counts_like_aioprometheus_one_value_at_a_time() -> None:
    fast, plain = HistogramSeries(*BOUNDS), PlainSeries(*BOUNDS)
    for value in [*EDGES, math.inf, -math.inf, math.nan]:
        fast.observe(value)
        plain.observe(value)
        assert fast.buckets == plain.buckets
        assert fast.observations == plain.observations
    assert math.isnan(fast.sum)
    assert math.isnan(plain.sum)


def test_an_empty_series_renders_zero_buckets() -> None:
    plain, fast = Registry(), Registry()
    plain_h = PlainHistogram("h_seconds", "a histogram", registry=plain, buckets=BOUNDS)
    Histogram("h_seconds", "a histogram", registry=fast, buckets=BOUNDS).empty()
    plain_h.set_value({}, PlainSeries(*BOUNDS))
    assert text(fast) == text(plain)


def test_bad_updates_are_refused_as_aioprometheus_refuses_them() -> None:
    registry = Registry()
    counter = Counter("c_total", "a counter", registry=registry)
    histogram = Histogram("h_seconds", "a histogram", registry=registry, buckets=BOUNDS)
    with pytest.raises(ValueError, match="decrease"):
        counter.add({}, -1)
    with pytest.raises(TypeError, match="digits"):
        histogram.observe({}, "1")
    with pytest.raises(ValueError, match="Invalid label name"):
        histogram.observe({"le": "1"}, 0.1)
    with pytest.raises(ValueError, match="sorted"):
        HistogramSeries(0.2, 0.1)
