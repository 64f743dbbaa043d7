"""What stops the web process as a whole: full garbage collections and a held event loop.

A p99 spike that every route shares is rarely the database: it is the process not running
requests at all. Two causes are measured here and one is removed.

- **Full collections.** CPython's generation-2 collection walks every container object the
  process holds. After startup that is about 280,000 objects (LightGBM, polars, MLflow's client,
  Litestar, the model's tables), and one full collection took 200 ms on this machine under load;
  it runs whenever the objects that survived younger collections reach a quarter of the old
  ones, so under steady traffic it strikes every few tens of seconds, in the middle of requests.
  `freeze_startup_heap` runs once when the process is ready: `gc.freeze()` moves every tracked
  object into a permanent generation that later collections skip (what
  CPython's documentation recommends for pre-fork servers, and what Instagram did for theirs).
  A full collection then walks only what was allocated since: a few milliseconds. Objects frozen
  are never freed, which is right for what startup built and lives as long as the process.
- **Young collections.** A scoring request keeps about 150 container objects alive while it
  waits on PostgreSQL (coroutines, frames, records, cells), so with 16 requests in flight every
  generation-0 collection walks a few thousand survivors, and CPython's default threshold (700
  allocations) ran one every 8 requests: 72 µs of collector CPU a request at saturation
  (measured with `gc.callbacks` and the thread's CPU clock). The threshold is raised to 3,000
  with the freeze: 42 µs a request, each young collection 2 ms instead of 0.6 (10,000 saved
  no more and paused 5 ms).
- **A held loop.** `watch_loop` sleeps 0.1 s in a loop and records how late it woke: anything
  that held the event loop (a synchronous computation, a blocking call) shows there, with its
  duration, whatever it was.

Both are histograms on /metrics (`fraudsvc_gc_pause_seconds`, `fraudsvc_event_loop_lag_seconds`)
and `make bench` reads them beside each run's p99, so a spike comes with its cause.
"""

from __future__ import annotations

import asyncio
import gc
import time
from typing import Any

from loguru import logger

from fraudsvc.telemetry.metrics import WebMetrics

WATCH_INTERVAL = 0.1


YOUNG_THRESHOLD = 3_000
"""Allocations between generation-0 collections in the web process (CPython's default: 700)."""
_THRESHOLD_BEFORE: list[tuple[int, int, int]] = []


def freeze_startup_heap() -> int:
    """Move every object the collector tracks into the permanent generation and raise the young
    threshold; returns how many were frozen. No collection first: it would cost one full pause
    at startup (0.7 s in the test process), and what it could free is startup's garbage, a
    bounded amount, once. `thaw()` undoes it."""
    started = time.perf_counter()
    gc.freeze()
    before = gc.get_threshold()
    if not _THRESHOLD_BEFORE:
        _THRESHOLD_BEFORE.append(before)
    gc.set_threshold(YOUNG_THRESHOLD, before[1], before[2])
    frozen = gc.get_freeze_count()
    logger.info(
        "froze {:,} startup objects out of the garbage collector's reach in {:.0f} ms",
        frozen,
        (time.perf_counter() - started) * 1000,
    )
    return frozen


def thaw() -> None:
    """Undo `freeze_startup_heap`: what startup built may be collected again, at the thresholds
    the process had."""
    gc.unfreeze()
    if _THRESHOLD_BEFORE:
        gc.set_threshold(*_THRESHOLD_BEFORE.pop())


class GcPauses:
    """Times every full collection into a histogram (younger ones are too cheap to matter and
    too frequent to time)."""

    def __init__(self, metrics: WebMetrics) -> None:
        self.metrics = metrics
        self.started: float | None = None

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self.started = time.perf_counter()
        elif self.started is not None:
            self.metrics.gc_pause.observe({}, time.perf_counter() - self.started)
            self.started = None

    def install(self) -> None:
        gc.callbacks.append(self)

    def remove(self) -> None:
        if self in gc.callbacks:
            gc.callbacks.remove(self)


async def watch_loop(metrics: WebMetrics, interval: float = WATCH_INTERVAL) -> None:
    loop = asyncio.get_running_loop()
    while True:
        before = loop.time()
        await asyncio.sleep(interval)
        metrics.loop_lag.observe({}, max(0.0, loop.time() - before - interval))
