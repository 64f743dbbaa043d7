"""The database pools on /metrics: connections in use against the bound, and the waits.

A scoring request's history and persist stages include the wait for a pooled connection; these
series tell a saturated pool (in use at the bound, the mean wait rising) from a slow database.
Set at each scrape from `engine.pool_states()`; the counts are kept by `queries._statement`.
"""

from __future__ import annotations

from fraudsvc.db.engine import pool_states
from fraudsvc.telemetry.metrics import MetricSet


def observe_pools(metrics: MetricSet) -> None:
    """The pools' connections and waits, as they are at the scrape."""
    for state in pool_states():
        labels = {"pool": state.name}
        metrics.db_pool.set({**labels, "state": "in_use"}, state.in_use)
        metrics.db_pool.set({**labels, "state": "idle"}, state.idle)
        metrics.db_pool.set({**labels, "state": "max"}, state.max)
        metrics.db_pool_acquires.set(labels, state.use.acquires)
        metrics.db_pool_wait.set(labels, state.use.wait_seconds)
