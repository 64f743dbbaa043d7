"""The OpenTelemetry Collector configuration (no collector binary here: its structure is
checked instead): OTLP in on 4317 and 4318 for other containers, batched, out to Jaeger."""

from __future__ import annotations

from typing import Any

from tests.observability import files


def config() -> dict[str, Any]:
    loaded = files.load_yaml(files.OTEL_CONFIG)
    assert isinstance(loaded, dict)
    return loaded


def test_receives_otlp_on_both_ports_from_other_containers() -> None:
    protocols = config()["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"] == "0.0.0.0:4317"
    assert protocols["http"]["endpoint"] == "0.0.0.0:4318"


def test_traces_go_batched_to_jaeger_over_otlp() -> None:
    cfg = config()
    pipeline = cfg["service"]["pipelines"]["traces"]
    assert pipeline["receivers"] == ["otlp"]
    assert "batch" in pipeline["processors"]
    assert pipeline["processors"][-1] == "batch", "batch last, after the memory limiter"
    (exporter,) = pipeline["exporters"]
    assert exporter.split("/")[0] == "otlp"
    assert cfg["exporters"][exporter]["endpoint"] == "jaeger:4317"


def test_every_component_a_pipeline_names_is_defined() -> None:
    cfg = config()
    for kind in ("receivers", "processors", "exporters"):
        for pipeline in cfg["service"]["pipelines"].values():
            assert set(pipeline[kind]) <= set(cfg[kind]), kind
    assert set(cfg["service"].get("extensions", [])) <= set(cfg.get("extensions", {}))
