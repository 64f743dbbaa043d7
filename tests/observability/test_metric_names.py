"""Every metric name a dashboard or a rule reads is one the code defines
(fraudsvc.telemetry.metrics), a recording rule of alerts.yml, or Prometheus's own `up`.
A renamed metric leaves panels empty and alerts silent; this catches it."""

from __future__ import annotations

import pytest

from fraudsvc.telemetry.metrics import WEB_METRICS, WORKER_METRICS
from tests.observability import files


def test_every_metric_read_is_defined_by_the_code() -> None:
    allowed = files.exported_series_names() | files.recording_rule_names() | files.PROMETHEUS_OWN
    used = files.used_metric_names()
    unknown = {name: sorted(where) for name, where in used.items() if name not in allowed}
    assert unknown == {}, f"metrics read but not defined: {unknown}"


def test_histograms_are_read_through_their_series_never_by_the_bare_name() -> None:
    bare = files.histogram_names() & set(files.used_metric_names())
    assert bare == set(), (
        f"a histogram has no series of its own name: use _bucket/_sum/_count {bare}"
    )


def test_the_allowed_names_come_from_the_code() -> None:
    exported = files.exported_series_names()
    assert "fraudsvc_http_requests_total" in exported
    assert "fraudsvc_http_request_duration_seconds_bucket" in exported
    assert "fraudsvc_http_request_duration_seconds" not in exported
    assert {n.removesuffix("_bucket") for n in exported if n.endswith("_bucket")} <= (
        WEB_METRICS | WORKER_METRICS
    )


def test_every_recording_rule_is_named_level_metric_operation() -> None:
    for name in files.recording_rule_names():
        assert name.startswith("fraudsvc:"), name
        assert name.count(":") == 2, name


def test_dashboards_and_rules_read_most_of_what_the_code_exports() -> None:
    """Only the label-less totals may go unread; everything else has a panel or an alert."""
    used = set(files.used_metric_names())
    read = {n for n in files.exported_series_names() if n in used}
    families = {n.removesuffix(s) for n in read for s in files.HISTOGRAM_SUFFIXES if n.endswith(s)}
    unread = (WEB_METRICS | WORKER_METRICS) - read - families
    assert unread == set(), f"exported but on no dashboard: {unread}"


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("up", {"up"}),
        ('sum by (job) (rate(a_total{route=~"/v1/.*", x="by(z)"}[5m]))', {"a_total"}),
        (
            "histogram_quantile(0.99, sum by (le, method) (rate(b_bucket[$__rate_interval])))",
            {"b_bucket"},
        ),
        ("a / ignoring (decision) group_left sum(b)", {"a", "b"}),
        ("x > 0.05 and on (job) y:z:rate5m > 1e3", {"x", "y:z:rate5m"}),
        ("sum(rate(c[5m] offset 1h)) or on () vector(0)", {"c"}),
        ("max without (instance) (d) unless e == bool 1", {"d", "e"}),
        ("sum(f) by (g) * 60", {"f"}),
        ('label_replace(h, "dst", "$1", "src", "(.*)")', {"h"}),
    ],
)
def test_metric_names_finds_exactly_the_selected_metrics(expr: str, names: set[str]) -> None:
    assert files.metric_names(expr) == names


@pytest.mark.parametrize(
    ("expr", "operands"),
    [
        ("up == 0", ["up"]),
        ("a:b:c > 0.05\nand on (job)\nd > 0.1", ["a:b:c", "d"]),
        (
            "max by (job) (q) > 1000 or max by (job) (p) > 1000",
            ["max by (job) (q)", "max by (job) (p)"],
        ),
        ("sum(rate(x[5m] and y)) >= 5", ["sum(rate(x[5m] and y))"]),
        ("absent(up)", ["absent(up)"]),
    ],
)
def test_alert_operands_splits_and_strips_comparisons(expr: str, operands: list[str]) -> None:
    assert files.alert_operands(expr) == operands
