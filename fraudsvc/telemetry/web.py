"""How the web process feeds its metrics: scoring outcomes, model events, the /metrics route."""

from __future__ import annotations

from litestar import Request, Response, get
from litestar.datastructures import State

from fraudsvc.decision import DECISIONS
from fraudsvc.explain_policy import ALL, FLAGGED, REQUESTED, SAMPLED
from fraudsvc.model.loader import ModelHolder
from fraudsvc.pipeline import Scored
from fraudsvc.telemetry.metrics import WebMetrics, empty, reset
from fraudsvc.telemetry.pools import observe_pools

MODEL_EVENTS = ("loaded", "refused", "registry_unreachable")


def zero(metrics: WebMetrics) -> None:
    """Start every known series at zero, so rates and panels have data from the first scrape."""
    for decision in DECISIONS:
        metrics.decisions.add({"decision": decision}, 0)
    for reason in (FLAGGED, SAMPLED, ALL, REQUESTED):
        metrics.explanations.add({"reason": reason}, 0)
    for event in MODEL_EVENTS:
        metrics.model_events.add({"outcome": event}, 0)
    metrics.replays.add({}, 0)
    metrics.db_errors.add({"source": "api"}, 0)
    metrics.redis_errors.add({"operation": "enqueue"}, 0)
    metrics.model_loaded.set({}, 0)
    metrics.rule_evaluations.add({}, 0)
    metrics.decided_by.add({"by": "model"}, 0)
    metrics.ruleset_version.set({}, 0)
    # a histogram's series exist from its first observation; a process with no full collection
    # yet shows zero of them rather than nothing
    empty(metrics.gc_pause)


def observe_scored(metrics: WebMetrics, scored: Scored) -> None:
    if scored.replay:
        metrics.replays.inc({})
        return
    for stage, seconds in scored.timings.items():
        metrics.stage_seconds.observe({"stage": stage}, seconds)
    metrics.scores.observe({}, scored.prediction.score)
    metrics.decisions.inc({"decision": scored.prediction.decision})
    decided_by = scored.prediction.decided_by
    metrics.decided_by.inc({"by": decided_by if decided_by == "model" else f"rule:{decided_by}"})
    if scored.rules_evaluated:
        metrics.rule_evaluations.inc({})
    for hit in scored.prediction.rules:
        if hit.status == "error":
            metrics.rule_errors.inc({"rule": hit.id, "mode": hit.mode})
        else:
            metrics.rule_hits.inc({"rule": hit.id, "mode": hit.mode, "action": hit.action})
    if scored.explain_reason is not None:
        metrics.explanations.inc({"reason": scored.explain_reason})


def follow_model(metrics: WebMetrics, models: ModelHolder) -> None:
    def on_event(event: str) -> None:
        metrics.model_events.inc({"outcome": event})
        status = models.status()
        metrics.model_loaded.set({}, 1 if status.loaded else 0)
        if status.loaded:
            reset(metrics.model_info)
            metrics.model_info.set(
                {"name": status.name, "version": str(status.version), "source": str(status.source)},
                1,
            )

    models.listeners.append(on_event)


@get("/metrics", include_in_schema=False, sync_to_thread=False)
def metrics_route(request: Request[object, object, State]) -> Response[bytes]:
    metrics: WebMetrics = request.app.state.metrics
    observe_pools(metrics)
    content, headers = metrics.render(request.headers.getall("accept", []))
    return Response(content=content, headers=headers)
