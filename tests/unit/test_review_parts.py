"""The review pages' pure parts: bar geometry, how values and ages read, which filters pass,
and templates that escape every value."""

from __future__ import annotations

import pytest

from fraudsvc.review.charts import bar_chart
from fraudsvc.review.queue import age_text, details_text, filters_from


def test_bars_grow_both_ways_from_one_zero_line_and_the_longest_spans_its_half() -> None:
    chart = bar_chart([("a", 2.0), ("b", -1.0), ("c", 0.5)])
    a, b, c = chart.bars
    assert a.x == chart.zero_x == c.x
    assert b.x + b.width == pytest.approx(chart.zero_x)
    assert a.width == pytest.approx(2 * b.width)
    assert a.width == pytest.approx(4 * c.width)
    assert (a.positive, b.positive) == (True, False)
    assert a.shown == "+2.000"
    assert b.shown == "-1.000"
    assert all(bar.x >= chart.label_x for bar in chart.bars)
    assert all(bar.x + bar.width <= chart.value_x for bar in chart.bars)


def test_one_signed_chart_uses_the_whole_width_and_an_empty_one_draws_nothing() -> None:
    positive = bar_chart([("a", 1.0), ("b", 0.25)])
    negative = bar_chart([("a", -1.0)])
    assert positive.bars[0].width == pytest.approx(negative.bars[0].width)
    assert bar_chart([]).bars == []


def test_labels_stay_text_for_the_template_to_escape() -> None:
    assert bar_chart([("<script>", 1.0)]).bars[0].label == "<script>"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(5, "just now"), (61, "1 min"), (3 * 3600 + 120, "3 h 02 min"), (5 * 86400, "5 days")],
)
def test_ages_read_as_a_person_would_say_them(seconds: float, text: str) -> None:
    assert age_text(seconds) == text


def test_queue_filters_drop_what_is_not_a_choice() -> None:
    f = filters_from("review", "review_large", "T-1")
    assert (f.decision, f.rule, f.terminal) == ("review", "review_large", "T-1")
    bad = filters_from("allow", "x' OR 1=1", "<b>")
    assert (bad.decision, bad.rule, bad.terminal) == (None, None, None)


def test_details_are_one_short_line() -> None:
    assert details_text(None) == ""
    assert details_text({"b": 1, "a": "x"}) == "a=x, b=1"
    assert len(details_text({"a": "y" * 500})) == 120


def test_every_template_value_is_escaped_and_a_missing_one_fails_loudly() -> None:
    import jinja2

    from fraudsvc.review.routes import templates

    env = templates()
    assert env.from_string("{{ x }}").render(x='"><img src=x>') == "&#34;&gt;&lt;img src=x&gt;"
    with pytest.raises(jinja2.UndefinedError):
        env.from_string("{{ missing.field }}").render()
