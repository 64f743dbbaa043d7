"""`tracing.span`: a child span only where it can be recorded."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased

from fraudsvc.telemetry.tracing import setup_tracing, span


def provider_with(sampler: ParentBased) -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def test_below_an_unsampled_span_no_child_is_made_and_the_ids_stay_the_requests() -> None:
    provider, exporter = provider_with(ParentBased(ALWAYS_OFF))
    with provider.get_tracer("t").start_as_current_span("POST /v1/transactions") as server:
        assert not server.is_recording()
        with span("persist") as child:
            assert child is server
            assert trace.get_current_span() is server
    assert exporter.get_finished_spans() == ()


def test_below_a_sampled_span_a_child_is_started_in_its_trace() -> None:
    setup_tracing("fraudsvc-test")  # the process's provider, as the services make it
    provider, _ = provider_with(ParentBased(ALWAYS_ON))
    server_span = provider.get_tracer("t").start_as_current_span("POST /v1/transactions")
    with server_span as server, span("persist") as child:
        assert child is not server
        context = child.get_span_context()
        assert context.trace_id == server.get_span_context().trace_id
        assert context.span_id != server.get_span_context().span_id


def test_without_any_span_a_root_is_started() -> None:
    setup_tracing("fraudsvc-test")
    assert not trace.get_current_span().get_span_context().is_valid
    with span("sweep") as root:
        assert root.get_span_context().is_valid
