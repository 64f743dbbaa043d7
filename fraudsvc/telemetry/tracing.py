"""OpenTelemetry traces: one trace per transaction, from the HTTP request to the explanation.

- The web request's server span (`server_span`) is named by route template; asyncpg and Redis
  calls, the rules and the enqueue are spans below it. The asyncpg and Redis instrumentations
  are installed only when something can record (an exporter or a test's processor, and a
  sampler that is not ALWAYS_OFF): wrapping every query for spans nobody keeps is pure cost.
- The trace context travels in the explanation job (and in the explanation row, for jobs the
  sweep sends later), so the worker's `explain` span continues the same trace.
- Exporters come from the standard variables: OTLP over HTTP when OTEL_EXPORTER_OTLP_ENDPOINT
  (or ..._TRACES_ENDPOINT) is set or OTEL_TRACES_EXPORTER=otlp; `console` prints spans; nothing
  is exported otherwise. With nothing to export, spans are not recorded (an ALWAYS_OFF
  sampler): they keep their trace and span ids, so every log line and every job still carries
  them, at a fraction of the cost (recording spans for nobody took 40 % of the web process's CPU
  in make bench).
- The sampler is the standard OTEL_TRACES_SAMPLER (and _ARG), which always decides when set.
  Unset and exporting, it is `parentbased_traceidratio` at 0.01: one transaction in a hundred
  is traced end to end, and so is every request whose caller sends a sampled `traceparent` (to
  follow one payment on purpose). Unsampled spans cost a little (the bench's what-ifs measure
  it against OTEL_SDK_DISABLED=true), which is why the scoring path opens spans only around
  what can be slow or fail: the two database statements (the asyncpg instrumentation), the
  rules, the enqueue; features and the score are the stage histograms' business.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
    _get_from_env_or_default,
)

TRACER_NAME = "fraudsvc"
DEFAULT_RATIO = 0.01
"""Share of transactions traced when exporting and OTEL_TRACES_SAMPLER is unset."""
_INSTRUMENTED: set[str] = set()


_TRACER: list[tuple[trace.TracerProvider, trace.Tracer]] = []


def tracer() -> trace.Tracer:
    """The process's tracer, made once per tracer provider (making one per call took longer
    than starting an unsampled span)."""
    provider = trace.get_tracer_provider()
    if not _TRACER or _TRACER[0][0] is not provider:
        _TRACER[:] = [(provider, trace.get_tracer(TRACER_NAME, tracer_provider=provider))]
    return _TRACER[0][1]


def _exporter_from_env() -> SpanExporter | None:
    choice = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    if choice == "none":
        return None
    if choice == "console":
        return ConsoleSpanExporter()
    if choice == "otlp" or (not choice and endpoint):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    return None


class _Sampler(Sampler):
    """The process's sampler: ALWAYS_OFF until a span processor exists (an exporter, a test's),
    then the configured one: OTEL_TRACES_SAMPLER when set, else parentbased_traceidratio at
    DEFAULT_RATIO. A provider is created once per process, and a processor may come later."""

    def __init__(self) -> None:
        self.delegate: Sampler = ALWAYS_OFF

    def should_sample(self, *args: Any, **kwargs: Any) -> SamplingResult:
        return self.delegate.should_sample(*args, **kwargs)

    def get_description(self) -> str:
        return f"fraudsvc({self.delegate.get_description()})"

    def start_recording(self) -> None:
        if os.environ.get("OTEL_TRACES_SAMPLER"):
            self.delegate = _get_from_env_or_default()
        else:
            self.delegate = ParentBased(TraceIdRatioBased(DEFAULT_RATIO))


_SAMPLER = _Sampler()


def setup_tracing(service_name: str, processor: SpanProcessor | None = None) -> TracerProvider:
    """The process-wide tracer provider (created once; later calls add `processor`), and the
    asyncpg and Redis instrumentations."""
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        provider = current
    else:
        attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": service_name}
        provider = TracerProvider(resource=Resource.create(attributes), sampler=_SAMPLER)
        exporter = _exporter_from_env()
        if exporter is not None:
            provider.add_span_processor(BatchSpanProcessor(exporter))
            _SAMPLER.start_recording()
        trace.set_tracer_provider(provider)
    if processor is not None:
        provider.add_span_processor(processor)
        _SAMPLER.start_recording()
    if _SAMPLER.delegate is ALWAYS_OFF:
        # nothing would ever record a database span: the server span's ids are enough for
        # the logs and the jobs, and not wrapping every query saves its cost on each request
        return provider
    if "asyncpg" not in _INSTRUMENTED:
        from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

        AsyncPGInstrumentor().instrument(tracer_provider=provider)  # type: ignore[no-untyped-call]
        _INSTRUMENTED.add("asyncpg")
    if "redis" not in _INSTRUMENTED:
        from opentelemetry.instrumentation.redis import RedisInstrumentor

        RedisInstrumentor().instrument(tracer_provider=provider)
        _INSTRUMENTED.add("redis")
    return provider


def current_context_carrier() -> dict[str, str]:
    """The current trace context as W3C headers (traceparent, tracestate), for a job."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def carrier_to_text(carrier: dict[str, str]) -> str | None:
    return json.dumps(carrier, separators=(",", ":")) if carrier else None


def carrier_from_text(text: str | None) -> dict[str, str]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def context_from(carrier: dict[str, str]) -> Context:
    return propagate.extract(carrier)


def annotate(**attributes: str | int | float | bool) -> None:
    """Attributes on the current span (the request's), for finding traces by outcome."""
    trace.get_current_span().set_attributes(attributes)


@contextmanager
def span(name: str, **attributes: str | int | float | bool) -> Iterator[trace.Span]:
    """A child span of the current one; none at all below a span that is not recorded (an
    unsampled request): every standard sampler decides a child as its parent (parent-based
    ones by the parent, ratio ones by the same trace id), so it would not be recorded either,
    and the request's log lines keep the server span's ids."""
    current = trace.get_current_span()
    if current.get_span_context().is_valid and not current.is_recording():
        yield current
        return
    with tracer().start_as_current_span(name, attributes=attributes or None) as child:
        yield child
