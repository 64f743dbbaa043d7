"""Write deploy/base/prometheusrule.yaml from observability/prometheus/alerts.yml.

Compose (Prometheus reading alerts.yml) and Kubernetes (the Prometheus operator reading a
PrometheusRule) share one set of rules: edit alerts.yml, then run `make rules`. A test fails
when the two differ.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "observability" / "prometheus" / "alerts.yml"
TARGET = REPO / "deploy" / "base" / "prometheusrule.yaml"
HEADER = """\
# Generated from observability/prometheus/alerts.yml by deploy/prometheusrule.py (make rules):
# do not edit here. Installations that select rules by a label (kube-prometheus-stack's
# release: <name>) add it in an overlay.
"""


def prometheus_rule() -> dict[str, Any]:
    groups = yaml.safe_load(SOURCE.read_text())["groups"]
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "fraudsvc",
            "labels": {
                "app.kubernetes.io/name": "fraudsvc",
                "app.kubernetes.io/part-of": "fraudsvc",
            },
        },
        "spec": {"groups": groups},
    }


def render() -> str:
    body: str = yaml.safe_dump(prometheus_rule(), sort_keys=False, width=100)
    return HEADER + body


if __name__ == "__main__":
    TARGET.write_text(render())
    print(f"wrote {TARGET.relative_to(REPO)}")
