"""The observability files as data: dashboards, their panels and queries, the rules, Grafana's
variables, and the metric names a PromQL expression reads.

Both the offline checks (tests/observability) and the live run against a real Prometheus
(tests/integration/test_observability_live.py) read the files through this module, so the two
see exactly the same queries.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # PyYAML ships no type information
from aioprometheus.collectors import Histogram

from fraudsvc.telemetry.metrics import WebMetrics, WorkerMetrics

REPO = Path(__file__).resolve().parents[2]
OBSERVABILITY = REPO / "observability"
PROMETHEUS_DIR = OBSERVABILITY / "prometheus"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
ALERTS = PROMETHEUS_DIR / "alerts.yml"
ALERTS_TEST = PROMETHEUS_DIR / "alerts.test.yml"
GRAFANA_DIR = OBSERVABILITY / "grafana"
DASHBOARDS_DIR = GRAFANA_DIR / "dashboards"
DASHBOARD_FILES = ("service.json", "model.json", "worker.json")
OTEL_CONFIG = OBSERVABILITY / "otel-collector" / "config.yaml"

HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
PROMETHEUS_OWN = frozenset({"up"})


def load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


# ---------------------------------------------------------------------------------- dashboards


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str
    panel: str
    ref_id: str
    expr: str

    @property
    def where(self) -> str:
        return f"{self.dashboard} / {self.panel!r} / {self.ref_id}"


def load_dashboards() -> dict[str, dict[str, Any]]:
    """Every dashboard file by file name."""
    loaded: dict[str, dict[str, Any]] = {}
    for name in DASHBOARD_FILES:
        data = json.loads((DASHBOARDS_DIR / name).read_text(encoding="utf-8"))
        assert isinstance(data, dict), f"{name} is not a JSON object"
        loaded[name] = data
    return loaded


def panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those folded inside collapsed rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def panel_queries() -> list[PanelQuery]:
    return [
        PanelQuery(name, str(panel.get("title")), str(target.get("refId")), target["expr"])
        for name, dashboard in load_dashboards().items()
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
        if target.get("expr")
    ]


def template_variables(dashboard: Mapping[str, Any]) -> set[str]:
    return {str(v["name"]) for v in dashboard.get("templating", {}).get("list", [])}


_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """Replace Grafana's variables ($x, ${x}, ${x:fmt}, [[x]]) by concrete values; a variable
    without a value is an error, so no query reaches Prometheus with a `$` left in it."""

    def one(match: re.Match[str]) -> str:
        name = next(g for g in match.groups() if g is not None)
        if name not in values:
            raise KeyError(f"no value for Grafana variable ${name} in {expr!r}")
        return values[name]

    return _VARIABLE.sub(one, expr)


# ---------------------------------------------------------------------------------- rules


def rule_groups() -> list[dict[str, Any]]:
    groups = load_yaml(ALERTS)["groups"]
    assert isinstance(groups, list)
    return groups


def rules() -> list[dict[str, Any]]:
    return [rule for group in rule_groups() for rule in group["rules"]]


def alert_rules() -> list[dict[str, Any]]:
    return [rule for rule in rules() if "alert" in rule]


def recording_rule_names() -> set[str]:
    return {str(rule["record"]) for rule in rules() if "record" in rule}


# ---------------------------------------------------------------------------------- metrics


def histogram_names() -> set[str]:
    return {
        name
        for metrics in (WebMetrics(), WorkerMetrics())
        for name, collector in metrics.registry.collectors.items()
        if isinstance(collector, Histogram)
    }


def exported_series_names() -> set[str]:
    """The series names the processes export: every counter and gauge by its own name, every
    histogram through its _bucket, _sum and _count series (never the bare name)."""
    names: set[str] = set()
    histograms = histogram_names()
    for metrics in (WebMetrics(), WorkerMetrics()):
        for name in metrics.names:
            if name in histograms:
                names.update(name + suffix for suffix in HISTOGRAM_SUFFIXES)
            else:
                names.add(name)
    return names


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"' r"|'(?:[^'\\]|\\.)*'" r"|`[^`]*`")
_TOKEN = re.compile(
    r"""
    (?P<skip>\{[^}]*\}|\[[^\]]*\])                  # label matchers, ranges and subqueries
    | (?P<duration>\d+(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*\b)
    | (?P<number>0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
    | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
    | (?P<open>\()
    | (?P<close>\))
    | (?P<space>\s+)
    | (?P<other>.)
    """,
    re.VERBOSE,
)
# words of the language that are not metric names when they are not followed by "("
_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "inf", "nan", "group_left", "group_right"}
)
# modifiers followed by a parenthesised list of label names
_LABEL_LISTS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
# aggregation operators, which may be followed by `by (...)` before their "("
_AGGREGATIONS = frozenset(
    {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values"}
    | {"bottomk", "topk", "quantile", "limitk", "limit_ratio"}
)


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (functions, keywords, label names, strings,
    numbers and durations left out)."""
    text = _STRING.sub('""', expr)
    tokens = [
        (m.lastgroup, m.group())
        for m in _TOKEN.finditer(text)
        if m.lastgroup not in ("space", "skip")
    ]
    names: set[str] = set()
    i = 0
    while i < len(tokens):
        kind, value = tokens[i]
        following = tokens[i + 1][0] if i + 1 < len(tokens) else None
        if kind == "ident" and value in _LABEL_LISTS and following == "open":
            depth = 0
            i += 1
            while i < len(tokens):  # skip the label list
                depth += {"open": 1, "close": -1}.get(str(tokens[i][0]), 0)
                i += 1
                if depth == 0:
                    break
            continue
        if kind == "ident" and value in _AGGREGATIONS and following != "open":
            i += 1  # `sum by (x) (...)`: the label list is skipped next
            continue
        if kind == "ident" and following != "open" and value not in _KEYWORDS | _LABEL_LISTS:
            names.add(value)
        i += 1
    return names


def used_metric_names() -> dict[str, set[str]]:
    """Each metric name the dashboards and rules read, with the places that read it."""
    used: dict[str, set[str]] = {}
    for query in panel_queries():
        for name in metric_names(query.expr):
            used.setdefault(name, set()).add(query.where)
    for rule in rules():
        where = f"alerts.yml / {rule.get('alert') or rule.get('record')}"
        for name in metric_names(str(rule["expr"])):
            used.setdefault(name, set()).add(where)
    return used


_SET_OPERATOR = re.compile(r"\s(?:and|or|unless)(?:\s+(?:on|ignoring)\s*\([^)]*\))?\s")
_COMPARISON = re.compile(
    r"^(?P<lhs>.*\S)\s*(?:==|!=|>=|<=|>|<)\s*(?:bool\s+)?[-+]?[\d.eE+]+$", re.S
)


def alert_operands(expr: str) -> list[str]:
    """The measured sides of an alert: the expression is split at its top-level and/or/unless,
    and each part loses its comparison with a constant. `a > 0.05 and on() b > 1` gives
    `a` and `b`: the series an alert watches, which must exist when the service is healthy
    (an alert on a series that never exists can never fire)."""
    text = " ".join(expr.split())
    parts: list[str] = []
    depth = start = 0
    i = 0
    while i < len(text):
        char = text[i]
        depth += {"(": 1, ")": -1}.get(char, 0)
        match = _SET_OPERATOR.match(text, i) if depth == 0 else None
        if match:
            parts.append(text[start:i])
            start = i = match.end()
            continue
        i += 1
    parts.append(text[start:])
    operands = []
    for part in parts:
        compared = _COMPARISON.match(part.strip())
        operands.append(compared.group("lhs") if compared else part.strip())
    return operands
