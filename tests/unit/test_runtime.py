"""The web process's runtime watch: the startup heap frozen out of the collector's reach, full
collections timed, the event loop's lag measured (fraudsvc.telemetry.runtime)."""

from __future__ import annotations

import asyncio
import gc

from fraudsvc.telemetry.metrics import WebMetrics
from fraudsvc.telemetry.runtime import (
    YOUNG_THRESHOLD,
    GcPauses,
    freeze_startup_heap,
    thaw,
    watch_loop,
)


def test_a_frozen_heap_is_skipped_by_full_collections_until_thawed() -> None:
    holder = [[i] for i in range(50_000)]  # containers the collector tracks
    before = gc.get_threshold()
    try:
        frozen = freeze_startup_heap()
        assert frozen == gc.get_freeze_count() >= len(holder)
        assert len(gc.get_objects(generation=2)) < frozen  # out of every generation's walk
        assert gc.get_threshold() == (YOUNG_THRESHOLD, *before[1:])
    finally:
        thaw()
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == before
    del holder


def test_every_full_collection_is_timed_and_younger_ones_are_not() -> None:
    metrics = WebMetrics()
    pauses = GcPauses(metrics)
    pauses.install()
    try:
        gc.collect(0)
        gc.collect(1)
        assert not metrics.gc_pause.values  # nothing observed for generations 0 and 1
        gc.collect(2)
        gc.collect()
    finally:
        pauses.remove()
    assert pauses not in gc.callbacks
    observed = {k: float(v) for k, v in metrics.gc_pause.get({}).items()}  # type: ignore[arg-type]
    assert observed["count"] == 2
    assert observed["sum"] > 0


async def test_a_held_event_loop_shows_as_lag() -> None:
    metrics = WebMetrics()
    watcher = asyncio.create_task(watch_loop(metrics, interval=0.01))
    await asyncio.sleep(0.05)
    held = 0.2
    deadline = asyncio.get_running_loop().time() + held
    while asyncio.get_running_loop().time() < deadline:  # hold the loop, as blocking code would
        pass
    await asyncio.sleep(0.05)
    watcher.cancel()
    observed = {k: float(v) for k, v in metrics.loop_lag.get({}).items()}  # type: ignore[arg-type]
    assert observed[float("inf")] >= 1
    assert observed[0.1] < observed[float("inf")]  # one wake-up came more than 0.1 s late
