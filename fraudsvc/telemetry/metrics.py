"""The Prometheus metrics of the web and worker processes (aioprometheus).

Each process builds its own set with its own registry (no module-level collectors), serves it on
/metrics, and is the only writer. Names follow Prometheus conventions: base units (`_seconds`),
counters end in `_total`, route labels are templates (`/v1/transactions/{transaction_id}`),
never raw ids; requests that match no route are counted under route="unmatched". The
dashboards and alert rules in observability/ read exactly these names; a test compares them
with a live /metrics.
"""

from __future__ import annotations

from collections.abc import Sequence

from aioprometheus.collectors import Gauge, Registry
from aioprometheus.metricdict import MetricDict
from aioprometheus.renderer import render

from fraudsvc.telemetry.collectors import Counter, Histogram

LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip
STAGE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.1, 0.5, 2.0)
SCORE_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 0.95, 0.99)
JOB_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
PAUSE_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)
LAG_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)


class MetricSet:
    """A registry and the way to render it, with the database pools' series that both
    processes expose (`telemetry.pools` sets them at each scrape)."""

    def __init__(self) -> None:
        self.registry = Registry()
        r = self.registry
        self.db_pool = Gauge(
            "fraudsvc_db_pool_connections",
            "Connections of the process's database pools at the scrape, by pool (scoring and "
            "side in the web process, main in the worker) and state (in_use, idle, max: the "
            "bound)",
            registry=r,
        )
        self.db_pool_acquires = Counter(
            "fraudsvc_db_pool_acquires_total",
            "Statements that took a connection from a pool, by pool",
            registry=r,
        )
        self.db_pool_wait = Counter(
            "fraudsvc_db_pool_wait_seconds_total",
            "Time statements waited for a pooled connection, by pool",
            registry=r,
        )

    def render(self, accept_headers: Sequence[str]) -> tuple[bytes, dict[str, str]]:
        content, headers = render(self.registry, list(accept_headers))
        return content, dict(headers)

    @property
    def names(self) -> set[str]:
        return set(self.registry.collectors)


def reset(gauge: Gauge) -> None:
    """Drop every label set of a gauge (an info gauge whose labels changed)."""
    gauge.values = MetricDict()  # type: ignore[no-untyped-call]


def empty(histogram: Histogram, labels: dict[str, str] | None = None) -> None:
    """Create a histogram's series with no observation (all buckets at zero)."""
    histogram.empty(labels)


class WebMetrics(MetricSet):
    def __init__(self) -> None:
        super().__init__()
        r = self.registry
        self.requests = Counter(
            "fraudsvc_http_requests_total", "HTTP requests by route template and status", registry=r
        )
        self.request_seconds = Histogram(
            "fraudsvc_http_request_duration_seconds",
            "HTTP request latency by route template",
            registry=r,
            buckets=LATENCY_BUCKETS,
        )
        self.stage_seconds = Histogram(
            "fraudsvc_scoring_stage_seconds",
            "Time of each stage of the scoring path (history, score, persist, enqueue)",
            registry=r,
            buckets=STAGE_BUCKETS,
        )
        self.scores = Histogram(
            "fraudsvc_prediction_score", "Fraud scores of new predictions", registry=r,
            buckets=SCORE_BUCKETS,
        )  # fmt: skip
        self.decisions = Counter(
            "fraudsvc_decisions_total", "Decisions of new predictions by outcome", registry=r
        )
        self.replays = Counter(
            "fraudsvc_idempotent_replays_total",
            "Repeated transactions answered from storage",
            registry=r,
        )
        self.explanations = Counter(
            "fraudsvc_explanations_requested_total",
            "Explanations requested, by reason (flagged, sampled, all, requested)",
            registry=r,
        )
        self.model_info = Gauge(
            "fraudsvc_model_info",
            "The served model (value 1), by name, version, source",
            registry=r,
        )
        self.model_loaded = Gauge(
            "fraudsvc_model_loaded", "1 when a model is loaded and scoring works", registry=r
        )
        self.model_events = Counter(
            "fraudsvc_model_reloads_total",
            "Model (re)load events by outcome (loaded, refused, registry_unreachable)",
            registry=r,
        )
        self.db_errors = Counter(
            "fraudsvc_db_errors_total", "Requests that found PostgreSQL unavailable", registry=r
        )
        self.redis_errors = Counter(
            "fraudsvc_redis_errors_total", "Redis operations that failed", registry=r
        )
        self.drift = Gauge(
            "fraudsvc_drift_psi",
            "Population stability index of recent predictions against the training reference",
            registry=r,
        )
        self.drift_window = Gauge(
            "fraudsvc_drift_window_predictions",
            "Predictions in the window the drift gauges were computed on",
            registry=r,
        )
        self.rule_hits = Counter(
            "fraudsvc_rule_hits_total",
            "Rules that fired, by rule, mode (live, shadow) and action",
            registry=r,
        )
        self.rule_errors = Counter(
            "fraudsvc_rule_errors_total",
            "Rules that failed on a transaction (recorded, never failing the request), by rule "
            "and mode",
            registry=r,
        )
        self.rule_evaluations = Counter(
            "fraudsvc_rule_evaluations_total",
            "Transactions the live ruleset was evaluated on (the denominator of hit rates)",
            registry=r,
        )
        self.decided_by = Counter(
            "fraudsvc_decisions_by_total",
            "Final decisions by who decided them: the model, or a rule (by rule id)",
            registry=r,
        )
        self.ruleset_version = Gauge(
            "fraudsvc_ruleset_live_version",
            "The live ruleset version this process evaluates (0: none)",
            registry=r,
        )
        self.live_rules = Gauge(
            "fraudsvc_rules", "Rules of the live ruleset, by mode (live, shadow)", registry=r
        )
        self.list_entries = Gauge(
            "fraudsvc_list_entries", "Entries of each list this process holds", registry=r
        )
        self.loop_lag = Histogram(
            "fraudsvc_event_loop_lag_seconds",
            "How late the event loop woke a 0.1 s timer: time every request waited behind "
            "something that held the loop",
            registry=r,
            buckets=PAUSE_BUCKETS,
        )
        self.gc_pause = Histogram(
            "fraudsvc_gc_pause_seconds",
            "Full (generation 2) garbage collections of the web process: each one stops it",
            registry=r,
            buckets=PAUSE_BUCKETS,
        )


class WorkerMetrics(MetricSet):
    def __init__(self) -> None:
        super().__init__()
        r = self.registry
        self.jobs = Counter(
            "fraudsvc_explain_jobs_total",
            "Explanation jobs by outcome (done, failed, retried, skipped)",
            registry=r,
        )
        self.job_seconds = Histogram(
            "fraudsvc_explain_job_duration_seconds",
            "Wall time of explanation jobs",
            registry=r,
            buckets=JOB_BUCKETS,
        )
        self.lime_seconds = Histogram(
            "fraudsvc_explain_lime_seconds",
            "LIME computation time per explanation (in the process pool)",
            registry=r,
            buckets=JOB_BUCKETS,
        )
        self.model_seconds = Histogram(
            "fraudsvc_explain_model_seconds",
            "Of the LIME time, the time spent in the model's own predictions",
            registry=r,
            buckets=JOB_BUCKETS,
        )
        self.lag = Histogram(
            "fraudsvc_explain_lag_seconds",
            "Time from the explanation's request (the score) to its result",
            registry=r,
            buckets=LAG_BUCKETS,
        )
        self.queue_depth = Gauge(
            "fraudsvc_explain_queue_depth",
            "Explanation jobs waiting in the arq queue (size of its Redis sorted set)",
            registry=r,
        )
        self.open = Gauge(
            "fraudsvc_explanations_open",
            "Explanations not finished, by status (pending, running), from PostgreSQL",
            registry=r,
        )
        self.oldest_open = Gauge(
            "fraudsvc_explanations_oldest_open_seconds",
            "Age of the oldest explanation not finished (0 when none): a stuck worker shows here",
            registry=r,
        )
        self.review_open = Gauge(
            "fraudsvc_review_cases_open",
            "Cases waiting in the analysts' review queue, from PostgreSQL",
            registry=r,
        )
        self.review_oldest = Gauge(
            "fraudsvc_review_oldest_open_seconds",
            "Age of the oldest open review case (0 when none)",
            registry=r,
        )
        self.review_closed = Gauge(
            "fraudsvc_review_closed_last_hour",
            "Review cases closed in the last hour, by verdict (fraud, genuine)",
            registry=r,
        )
        self.review_precision = Gauge(
            "fraudsvc_review_confirmed_fraud_share",
            "Share of the review cases closed in the last 7 days that analysts confirmed as "
            "fraud: the precision of the review band (0 when none closed)",
            registry=r,
        )
        self.swept = Counter(
            "fraudsvc_sweep_enqueued_total",
            "Explanations the sweep enqueued because they had no job",
            registry=r,
        )
        self.db_errors = Counter(
            "fraudsvc_db_errors_total", "Jobs that found PostgreSQL unavailable", registry=r
        )
        self.redis_errors = Counter(
            "fraudsvc_redis_errors_total", "Redis operations that failed", registry=r
        )
        self.bucket_lag = Gauge(
            "fraudsvc_bucket_horizon_lag_seconds",
            "How far a deferred entity's folded buckets trail the clock (reads add the raw rows "
            "above the horizon, so a growing lag costs time, never exactness)",
            registry=r,
        )
        self.bucket_folded = Counter(
            "fraudsvc_bucket_folded_total",
            "Buckets written by the worker's fold, by entity",
            registry=r,
        )
        self.fold_seconds = Histogram(
            "fraudsvc_bucket_fold_seconds",
            "Time of one fold step (it holds the entity's fold lock meanwhile)",
            registry=r,
            buckets=STAGE_BUCKETS,
        )


WEB_METRICS = frozenset(WebMetrics().names)
WORKER_METRICS = frozenset(WorkerMetrics().names)
