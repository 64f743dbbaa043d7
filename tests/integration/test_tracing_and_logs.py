"""One transaction, followed from its HTTP request to its finished explanation: in one trace
(the SDK's in-memory exporter) and by one correlation id in the JSON logs."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from fraudsvc.settings import Settings
from fraudsvc.telemetry.logs import setup_logging
from fraudsvc.telemetry.tracing import setup_tracing
from tests.service import API_KEY, FAST_LIME, running_service, service_env

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    # every trace, through the standard variable (unset, one transaction in a hundred is traced)
    before = os.environ.get("OTEL_TRACES_SAMPLER")
    os.environ["OTEL_TRACES_SAMPLER"] = "parentbased_always_on"
    try:
        exporter = InMemorySpanExporter()
        setup_tracing("fraudsvc-test", SimpleSpanProcessor(exporter))
        yield exporter
    finally:
        if before is None:
            del os.environ["OTEL_TRACES_SAMPLER"]
        else:
            os.environ["OTEL_TRACES_SAMPLER"] = before


def by_name(found: list[ReadableSpan], name: str) -> ReadableSpan:
    matches = [s for s in found if s.name == name]
    assert matches, f"no span {name!r} among {sorted({s.name for s in found})}"
    return matches[0]


def parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


async def test_one_trace_and_one_correlation_id_from_request_to_explanation(
    registry_dir: Path,
    database_url: str,
    spans: InMemorySpanExporter,
    capsys: pytest.CaptureFixture[str],
) -> None:
    setup_logging("DEBUG", "json")
    settings = Settings.from_env(
        service_env(
            registry_dir,
            database_url,
            FRAUDSVC_EXPLAIN="all",
            **FAST_LIME,
        )
    )
    tid = "trace-" + secrets.token_hex(6)
    cid = "corr-" + secrets.token_hex(6)
    body = {
        "transaction_id": tid,
        "timestamp": "2026-03-02T12:30:00Z",
        "customer_id": "C1",
        "terminal_id": "T1",
        "amount": 12.5,
    }
    async with running_service(settings, with_worker=True) as client:
        spans.clear()
        scored = await client.post("/v1/transactions", json=body, headers={"X-Correlation-ID": cid})
        assert scored.status_code == 201
        status = ""
        for _ in range(300):
            status = (await client.get(f"/v1/transactions/{tid}/explanation")).json()["status"]
            if status == "done":
                break
            await asyncio.sleep(0.1)
        assert status == "done"
    found = list(spans.get_finished_spans())

    # -- the trace: server span named by template, stages below it, the job continuing it
    server = by_name(found, "POST /v1/transactions")
    trace_id = server.context.trace_id
    in_trace = [s for s in found if s.context.trace_id == trace_id]
    names = {s.name for s in in_trace}
    assert {"load history", "persist"} <= names
    assert server.attributes is not None
    assert server.attributes["fraudsvc.model_decision"] in ("allow", "review", "block")
    assert server.attributes["fraudsvc.decided_by"] == "model"
    assert {"enqueue explanation", "explain", "lime", "load model"} <= names
    enqueue = by_name(in_trace, "enqueue explanation")
    explain = by_name(in_trace, "explain")
    lime = by_name(in_trace, "lime")
    assert parent_id(explain) == enqueue.context.span_id  # web -> worker, through the job
    assert parent_id(lime) == explain.context.span_id
    for stage in ("load history", "persist", "enqueue explanation"):
        assert parent_id(by_name(in_trace, stage)) is not None
    database_spans = [s for s in in_trace if s.attributes and "db.system" in s.attributes]
    assert len(database_spans) >= 3  # history read, the write, the job's claim and finish
    assert explain.attributes is not None
    assert explain.attributes["fraudsvc.transaction_id"] == tid
    assert not [s.name for s in found if tid in s.name]  # no raw ids in span names
    reads = [s for s in found if s.name.startswith("GET /v1/transactions/")]
    assert reads
    assert {s.name for s in reads} == {"GET /v1/transactions/{transaction_id}/explanation"}

    # -- the logs: JSON lines; the request's and the job's carry the same ids; no key anywhere
    err = capsys.readouterr().err
    assert API_KEY not in err
    records: list[dict[str, Any]] = [json.loads(line) for line in err.splitlines() if line]
    mine = [r for r in records if r.get("correlation_id") == cid]
    assert {r["message"] for r in mine} >= {"decision", "explanation done"}
    hex_trace = format(trace_id, "032x")
    for record in mine:
        assert record.get("trace_id") == hex_trace, record
        assert len(record["span_id"]) == 16
        assert record["transaction_id"] == tid
    decision_line = next(r for r in mine if r["message"] == "decision")
    assert decision_line["level"] == "INFO"
    assert decision_line["status"] == 201
    assert decision_line["replay"] is False


async def test_a_callers_trace_continues_and_the_server_span_says_what_happened(
    registry_dir: Path, database_url: str, spans: InMemorySpanExporter
) -> None:
    settings = Settings.from_env(service_env(registry_dir, database_url))
    caller_trace, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    traceparent = f"00-{caller_trace}-{caller_span}-01"
    body = {
        "transaction_id": "parent-" + secrets.token_hex(6),
        "timestamp": "2026-03-02T12:30:00Z",
        "customer_id": "C1",
        "terminal_id": "T1",
        "amount": 12.5,
    }
    async with running_service(settings) as client:
        spans.clear()
        scored = await client.post(
            "/v1/transactions", json=body, headers={"traceparent": traceparent}
        )
        assert scored.status_code == 201
        missing = await client.get("/v1/transactions/nobody-here", headers={"traceparent": ""})
        assert missing.status_code == 404
        assert (await client.get("/healthz")).status_code == 200
    found = list(spans.get_finished_spans())
    server = by_name(found, "POST /v1/transactions")
    assert format(server.context.trace_id, "032x") == caller_trace
    assert server.parent is not None
    assert format(server.parent.span_id, "016x") == caller_span
    assert server.attributes is not None
    assert server.attributes["http.route"] == "/v1/transactions"
    assert server.attributes["http.response.status_code"] == 201
    read = by_name(found, "GET /v1/transactions/{transaction_id}")
    assert read.attributes is not None
    assert read.attributes["http.response.status_code"] == 404
    assert read.parent is None  # an empty traceparent starts a trace of its own
    assert not [s for s in found if "healthz" in s.name]  # probes are not traced
