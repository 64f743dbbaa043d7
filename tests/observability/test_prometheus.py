"""The Prometheus files: valid for promtool, alerts unit-tested, every alert documented and
tested both ways, the scrape targets and mount paths those of compose.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]  # PyYAML ships no type information

from tests.observability import files
from tests.observability.promtool import run_promtool

SEVERITIES = {"critical", "warning"}
GRAFANA_DEFAULTS = {"__rate_interval": "1m", "__interval": "15s", "__range": "1h"}


def test_scrape_config_is_valid_for_promtool() -> None:
    result = run_promtool("check", "config", files.PROMETHEUS_CONFIG)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout, "prometheus.yml must load alerts.yml"


def test_rules_are_valid_for_promtool() -> None:
    result = run_promtool("check", "rules", files.ALERTS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_unit_tests_pass() -> None:
    # from another folder: rule_files in the test file must resolve beside it
    result = run_promtool("test", "rules", files.ALERTS_TEST, cwd=files.REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout, result.stdout


def test_promtool_test_rules_fails_when_an_alert_is_weakened(tmp_path: Path) -> None:
    """The unit tests can fail: the same tests against rules whose error threshold is off."""
    rules = files.ALERTS.read_text(encoding="utf-8")
    assert "fraudsvc:api_errors:ratio_rate5m > 0.05" in rules
    (tmp_path / "alerts.yml").write_text(
        rules.replace(
            "fraudsvc:api_errors:ratio_rate5m > 0.05", "fraudsvc:api_errors:ratio_rate5m > 0.5"
        )
    )
    (tmp_path / "alerts.test.yml").write_text(files.ALERTS_TEST.read_text(encoding="utf-8"))
    result = run_promtool("test", "rules", tmp_path / "alerts.test.yml")
    assert result.returncode != 0
    assert "FraudsvcHighErrorRate" in result.stdout + result.stderr


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """promtool parses every dashboard query, written as a recording rule."""
    queries = files.panel_queries()
    group = {
        "name": "dashboards",
        "rules": [
            {"record": f"dashboard:query_{i}", "expr": files.substitute(q.expr, GRAFANA_DEFAULTS)}
            for i, q in enumerate(queries)
        ],
    }
    path = tmp_path / "dashboards.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [group]}), encoding="utf-8")
    result = run_promtool("check", "rules", path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(queries)} rules found" in result.stdout


@pytest.mark.parametrize("rule", files.alert_rules(), ids=lambda r: str(r["alert"]))
def test_every_alert_has_severity_duration_and_what_to_do(rule: dict[str, Any]) -> None:
    assert rule.get("labels", {}).get("severity") in SEVERITIES
    assert rule.get("for"), "a for: duration, so that a single bad evaluation does not page"
    annotations = rule.get("annotations", {})
    assert annotations.get("summary")
    assert len(annotations.get("description", "")) > 120, "the description says what to do"


def test_every_alert_is_unit_tested_firing_and_silent() -> None:
    cases = [
        case
        for test in files.load_yaml(files.ALERTS_TEST)["tests"]
        for case in test.get("alert_rule_test", [])
    ]
    fired = {c["alertname"] for c in cases if c.get("exp_alerts")}
    silent = {c["alertname"] for c in cases if not c.get("exp_alerts")}
    alerts = {str(r["alert"]) for r in files.alert_rules()}
    assert alerts - fired == set(), "alerts never shown to fire"
    assert alerts - silent == set(), "alerts never shown to stay silent"
    assert fired | silent <= alerts, "tests of alerts that do not exist"


def test_alert_names_are_unique() -> None:
    names = [str(r["alert"]) for r in files.alert_rules()]
    assert len(names) == len(set(names))


def test_scrape_targets_are_the_compose_services() -> None:
    config = files.load_yaml(files.PROMETHEUS_CONFIG)
    jobs = {
        job["job_name"]: [t for s in job["static_configs"] for t in s["targets"]]
        for job in config["scrape_configs"]
    }
    assert jobs["fraudsvc-web"] == ["web:8000"]
    assert jobs["fraudsvc-worker"] == ["worker:9101"]
    compose = files.load_yaml(files.REPO / "compose.yaml")
    assert {"web", "worker", "prometheus"} <= set(compose["services"])
    command = compose["services"]["prometheus"]["command"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in command
    mounts = compose["services"]["prometheus"]["volumes"]
    assert "./observability/prometheus:/etc/prometheus:ro" in mounts
    # relative to prometheus.yml, so /etc/prometheus/alerts.yml inside the container
    assert config["rule_files"] == ["alerts.yml"]
