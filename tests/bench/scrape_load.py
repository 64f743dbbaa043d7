"""Does rendering /metrics stall scoring? The same scoring load with and without a scraper.

aioprometheus renders `/metrics` on the web process's event loop, between scoring requests, so
a slow render would show as added scoring latency (every request waiting behind it) or as lost
throughput. The section runs fraudsvc at a fixed rate and at saturation twice per round, once
alone and once with a scraper hitting `/metrics` every `SCRAPE_INTERVAL` seconds (60 times as
often as the 15 s of observability/prometheus/prometheus.yml, so that a stall, if any, is not
diluted), the two interleaved, and compares the medians. It also gives how long a render takes
and how large the exposition is once the service has been scoring for a while.
"""

from __future__ import annotations

import statistics
import threading
import time
import urllib.request
from dataclasses import dataclass, field

from tests.bench.environment import Bench
from tests.bench.load import (
    LoadRun,
    Pools,
    Target,
    describe,
    level_name,
    median_of,
    run_level,
)
from tests.bench.report import Report

SCRAPE_INTERVAL = 0.25
RATE = 300.0


@dataclass
class Scraper:
    """GET `url` every `interval` seconds on a thread; keeps each render's time and size."""

    url: str
    interval: float
    seconds: list[float] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    failures: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Scraper:
        self._thread = threading.Thread(target=self._loop, name="metrics-scraper", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(self.url, timeout=10) as response:
                    size = len(response.read())
            except OSError:
                self.failures += 1
                continue
            self.seconds.append(time.perf_counter() - started)
            self.sizes.append(size)


def run(bench: Bench, report: Report, pools: Pools, target: Target, section: str) -> None:
    plan = bench.plan
    assert target.metrics_url is not None
    print(
        f"  /metrics under load: scraped every {SCRAPE_INTERVAL:g} s or not at all ...", flush=True
    )
    levels: list[float | None] = [RATE, None]
    runs: dict[tuple[bool, float | None], list[LoadRun]] = {}
    scrapers: list[Scraper] = []
    for r in range(plan.repeat):
        for rate in levels:
            for scraped in (False, True):
                if scraped:
                    with Scraper(target.metrics_url, SCRAPE_INTERVAL) as scraper:
                        run = run_level(target, rate, plan.load_seconds, r)
                    scrapers.append(scraper)
                else:
                    run = run_level(target, rate, plan.load_seconds, r)
                runs.setdefault((scraped, rate), []).append(run)
                print(describe(run) + ("  (scraped)" if scraped else ""), flush=True)

    renders = [s for scraper in scrapers for s in scraper.seconds]
    sizes = [b for scraper in scrapers for b in scraper.sizes]
    failures = sum(scraper.failures for scraper in scrapers)
    rows = []
    for rate in levels:
        row = [level_name(rate)]
        for chosen in (runs[(False, rate)], runs[(True, rate)]):
            row += [
                f"{median_of(chosen, lambda x: x.result.rate):,.0f}",
                f"{median_of(chosen, lambda x: x.result.p50_ms):.2f}",
                f"{median_of(chosen, lambda x: x.result.p99_ms):.2f}",
            ]
        rows.append(row)
    render_ms = [1000.0 * s for s in renders]
    summary = {
        "interval_seconds": SCRAPE_INTERVAL,
        "scrapes": len(renders),
        "failures": failures,
        "render_ms_p50": statistics.median(render_ms) if render_ms else None,
        "render_ms_max": max(render_ms) if render_ms else None,
        "bytes_p50": statistics.median(sizes) if sizes else None,
        "runs": {
            f"{'scraped' if s else 'alone'} {level_name(r)}": [x.as_json() for x in rs]
            for (s, r), rs in runs.items()
        },
    }
    report.data["metrics_under_load"] = summary
    render_note = (
        f"{len(renders)} scrapes ({failures} failed), render p50 "
        f"{summary['render_ms_p50']:.2f} ms, max {summary['render_ms_max']:.2f} ms, "
        f"{summary['bytes_p50']:,.0f} bytes"
        if render_ms
        else f"no scrape succeeded ({failures} failed)"
    )
    report.table(
        section,
        "Rendering /metrics under scoring load",
        [
            "level",
            "alone req/s",
            "alone p50 ms",
            "alone p99 ms",
            "scraped req/s",
            "scraped p50 ms",
            "scraped p99 ms",
        ],
        rows,
        f"The same fraudsvc web, {plan.repeat} round(s) of {plan.load_seconds:g} s per level, "
        f"alone and with a scraper GETting /metrics every {SCRAPE_INTERVAL:g} s (60x the "
        f"15 s Prometheus interval of observability/), interleaved; medians. {render_note} "
        "(client-side wall time, measured while the service was under the load).",
    )
