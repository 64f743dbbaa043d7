"""The Grafana files: provisioning that finds the dashboards and the datasource they name, and
dashboards whose every panel queries Prometheus."""

from __future__ import annotations

from typing import Any

import pytest

from tests.observability import files

DASHBOARDS = files.load_dashboards()
GRAFANA_BUILTINS = {"__rate_interval": "1m", "__interval": "15s", "__range": "1h"}


def datasource() -> dict[str, Any]:
    config = files.load_yaml(files.GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml")
    (source,) = config["datasources"]
    assert isinstance(source, dict)
    return source


def test_the_datasource_is_the_compose_prometheus_with_its_scrape_interval() -> None:
    source = datasource()
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    scrape = files.load_yaml(files.PROMETHEUS_CONFIG)["global"]["scrape_interval"]
    assert source["jsonData"]["timeInterval"] == scrape, "$__rate_interval depends on it"


def test_the_provider_loads_the_folder_compose_mounts() -> None:
    config = files.load_yaml(files.GRAFANA_DIR / "provisioning" / "dashboards" / "fraudsvc.yml")
    (provider,) = config["providers"]
    assert provider["type"] == "file"
    mounts = files.load_yaml(files.REPO / "compose.yaml")["services"]["grafana"]["volumes"]
    assert f"./observability/grafana/dashboards:{provider['options']['path']}:ro" in mounts


def test_dashboards_have_distinct_uids_and_titles() -> None:
    uids = [d["uid"] for d in DASHBOARDS.values()]
    titles = [d["title"] for d in DASHBOARDS.values()]
    assert len(set(uids)) == len(uids) == len(files.DASHBOARD_FILES)
    assert len(set(titles)) == len(titles)


@pytest.mark.parametrize("name", files.DASHBOARD_FILES)
def test_every_panel_queries_the_provisioned_prometheus(name: str) -> None:
    dashboard = DASHBOARDS[name]
    uid = datasource()["uid"]
    panels = list(files.panels(dashboard))
    assert panels, f"{name} has no panels"
    ids = [p["id"] for p in panels]
    assert len(set(ids)) == len(ids), f"{name}: panel ids repeat"
    for panel in panels:
        where = f"{name} / {panel.get('title')!r}"
        assert panel.get("title"), f"{where}: no title"
        targets = panel.get("targets", [])
        assert any(t.get("expr", "").strip() for t in targets), f"{where}: no query"
        for target in targets:
            assert target["datasource"]["uid"] == uid, f"{where}: another datasource"
        assert panel["datasource"]["uid"] == uid, f"{where}: another datasource"
        refs = [t["refId"] for t in targets]
        assert len(set(refs)) == len(refs), f"{where}: refIds repeat"
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, f"{where}: wider than the grid"


@pytest.mark.parametrize("name", files.DASHBOARD_FILES)
def test_every_variable_in_a_query_is_defined(name: str) -> None:
    dashboard = DASHBOARDS[name]
    known = GRAFANA_BUILTINS | dict.fromkeys(files.template_variables(dashboard), ".*")
    for query in files.panel_queries():
        if query.dashboard == name:
            assert "$" not in files.substitute(query.expr, known), query.where


def test_there_are_the_three_dashboards_the_issue_asks_for() -> None:
    """service (traffic, latency, stages, errors), model (decisions, scores, drift), worker."""
    text = {
        name: " ".join(q.expr for q in files.panel_queries() if q.dashboard == name)
        for name in DASHBOARDS
    }
    for name, needed in {
        "service.json": [
            "fraudsvc_http_requests_total",
            "fraudsvc_http_request_duration_seconds_bucket",
            "fraudsvc_scoring_stage_seconds_bucket",
            "fraudsvc_db_errors_total",
        ],
        "model.json": [
            "fraudsvc_model_info",
            "fraudsvc_decisions_total",
            "fraudsvc_prediction_score_bucket",
            "fraudsvc_drift_psi",
            "fraudsvc_idempotent_replays_total",
            "fraudsvc_model_reloads_total",
        ],
        "worker.json": [
            "fraudsvc_explain_jobs_total",
            "fraudsvc_explain_lime_seconds_bucket",
            "fraudsvc_explain_model_seconds_bucket",
            "fraudsvc_explain_queue_depth",
            "fraudsvc_explanations_open",
            "fraudsvc_explain_lag_seconds_bucket",
            "fraudsvc_sweep_enqueued_total",
        ],
    }.items():
        missing = [m for m in needed if m not in text[name]]
        assert missing == [], f"{name} shows nothing of {missing}"
