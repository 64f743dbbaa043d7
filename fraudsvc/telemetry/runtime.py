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


def freeze_startup_heap() -> int:
    """Move every object the collector tracks into the permanent generation; returns how many
    were frozen. No collection first: it would cost one full pause at startup (0.7 s in the test
    process), and what it could free is startup's garbage, a bounded amount, once."""
    started = time.perf_counter()
    gc.freeze()
    frozen = gc.get_freeze_count()
    logger.info(
        "froze {:,} startup objects out of the garbage collector's reach in {:.0f} ms",
        frozen,
        (time.perf_counter() - started) * 1000,
    )
    return frozen


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
