"""The benchmark's pure parts: /metrics arithmetic, LIME's measures and the rules that choose its
settings, percentiles, profile areas, the /metrics scraper, and the report's Markdown."""

from __future__ import annotations

import dataclasses
import http.server
import math
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from fraudsvc.explain_options import LimeOptions
from fraudsvc.processes import free_ports
from fraudsvc.telemetry.metrics import WebMetrics
from tests.bench.explanations import percentile
from tests.bench.lime_measure import Measured, Variant, probability_gap
from tests.bench.lime_rules import (
    best,
    budget_ms,
    choose_k,
    jaccard,
    mean_abs_error,
    mean_pairwise_jaccard,
    recommend,
    seed_estimates,
)
from tests.bench.lime_settings import SHIPPED, around, next_base
from tests.bench.load import SCORE_PATH, Clock, machine_cpu, parse_metrics, stage_means, stops
from tests.bench.plan import make_plan
from tests.bench.procstat import machine_cpu_seconds, running
from tests.bench.profiled import area
from tests.bench.report import Figure, Report
from tests.bench.scrape_load import Scraper

METRICS = """# HELP fraudsvc_scoring_stage_seconds Time of each stage
# TYPE fraudsvc_scoring_stage_seconds histogram
fraudsvc_scoring_stage_seconds_bucket{le="0.001",stage="history"} 1.0
fraudsvc_scoring_stage_seconds_count{stage="history"} {H_N}
fraudsvc_scoring_stage_seconds_sum{stage="history"} {H_S}
fraudsvc_scoring_stage_seconds_count{stage="score"} {H_N}
fraudsvc_scoring_stage_seconds_sum{stage="score"} {S_S}
fraudsvc_http_request_duration_seconds_count{method="POST",route="/v1/transactions"} {H_N}
fraudsvc_http_request_duration_seconds_sum{method="POST",route="/v1/transactions"} {R_S}
fraudsvc_http_request_duration_seconds_count{method="GET",route="/healthz"} 7.0
"""


def metrics(n: float, history: float, score: float, request: float) -> str:
    return (
        METRICS.replace("{H_N}", str(n))
        .replace("{H_S}", str(history))
        .replace("{S_S}", str(score))
        .replace("{R_S}", str(request))
    )


def test_parse_metrics_reads_labelled_samples() -> None:
    samples = parse_metrics(metrics(10, 0.02, 0.003, 0.05))
    key = ("fraudsvc_scoring_stage_seconds_sum", frozenset({("stage", "history")}))
    assert samples[key] == pytest.approx(0.02)
    get = ("fraudsvc_http_request_duration_seconds_count",
           frozenset({("method", "GET"), ("route", "/healthz")}))  # fmt: skip
    assert samples[get] == 7.0


def test_stage_means_come_from_the_difference_of_two_scrapes() -> None:
    before = parse_metrics(metrics(10, 0.02, 0.003, 0.05))
    after = parse_metrics(metrics(110, 0.12, 0.023, 0.35))  # 100 requests in between
    means = stage_means(before, after)
    assert means["history"] == pytest.approx(1.0)  # 0.1 s / 100 requests
    assert means["score"] == pytest.approx(0.2)
    assert means["request"] == pytest.approx(3.0)
    assert means["other"] == pytest.approx(1.8)  # the request time outside the stages


def test_stage_means_are_empty_without_requests() -> None:
    same = parse_metrics(metrics(10, 0.02, 0.003, 0.05))
    assert stage_means(same, same) == {}


def test_stops_count_the_slow_requests_and_database_stages_from_the_services_histograms() -> None:
    web = WebMetrics()
    scoring = {"method": "POST", "route": SCORE_PATH}

    def scraped() -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        return parse_metrics(web.render(["text/plain"])[0].decode())

    web.request_seconds.observe(scoring, 0.05)  # before the run: not counted
    before = scraped()
    for seconds in (0.003, 0.019, 0.021, 0.2):
        web.request_seconds.observe(scoring, seconds)
    web.request_seconds.observe({"method": "GET", "route": "/healthz"}, 0.5)  # not scoring
    for stage, seconds in (("history", 0.012), ("history", 0.004), ("persist", 0.03)):
        web.stage_seconds.observe({"stage": stage}, seconds)
    web.stage_seconds.observe({"stage": "score"}, 0.05)  # not a database stage
    counted = stops(before, scraped())
    assert counted["server_over_20ms"] == 2
    assert counted["database_over_10ms"] == 2


def test_the_load_clock_moves_past_every_sent_request() -> None:
    clock = Clock(base=1_000.0, step=10.0)
    clock.advance(sent=99)
    assert clock.base == pytest.approx(2_000.0)  # requests 0..98 used 1000..1980


def test_jaccard_of_top_feature_sets() -> None:
    a, b = frozenset("abcde"), frozenset("abcxy")
    assert jaccard(a, b) == pytest.approx(3 / 7)
    assert jaccard(a, a) == 1.0
    assert mean_pairwise_jaccard([a, a, b]) == pytest.approx((1 + 3 / 7 + 3 / 7) / 3)
    assert mean_pairwise_jaccard([a]) == 1.0


def sets(*names: str) -> list[frozenset[str]]:
    return [frozenset(n) for n in names]


def measured(
    options: LimeOptions, axis: str, r2: float, tops: list[list[frozenset[str]]]
) -> Measured:
    m = Measured(Variant(axis, repr(options), options), flagged=[True] * len(tops[0]))
    m.r2 = [[r2] * len(tops[0]) for _ in tops]
    m.tops = tops
    return m


def test_measured_stability_is_per_vector_across_seeds() -> None:
    m = measured(SHIPPED, "base", 0.5, [sets("abc", "xyz"), sets("abd", "xyz")])
    m.flagged = [True, False]
    assert m.stability_per_vector() == pytest.approx([0.5, 1.0])
    assert m.stability() == pytest.approx(0.75)
    assert m.stability(flagged=True) == pytest.approx(0.5)
    assert m.median_r2(flagged=False) == 0.5


def test_the_gap_to_the_score_is_in_probability_whatever_the_target() -> None:
    log_odds = {"target": "log_odds", "local_prediction": 0.0, "score": 0.2}
    assert probability_gap(log_odds) == pytest.approx(0.3)  # logistic(0) = 0.5
    assert probability_gap(log_odds | {"local_prediction": 1e6}) == pytest.approx(0.8)
    probability = {"target": "probability", "local_prediction": 1.4, "score": 0.9}
    assert probability_gap(probability) == pytest.approx(0.1)  # clipped to 1


def test_around_varies_one_axis_at_a_time_without_repeating_the_base() -> None:
    variants = around(SHIPPED, widths=(0.75, 3.0), sizes=(1000, 2000))
    assert variants[0].axis == "base"
    assert variants[0].options == SHIPPED
    assert len({v.options for v in variants}) == len(variants)
    for v in variants[1:]:
        changed = {
            f for f in ("discretizer", "sample_around_instance", "target", "kernel_width_factor",
                        "num_samples")
            if getattr(v.options, f) != getattr(SHIPPED, f)
        }  # fmt: skip
        assert 1 <= len(changed) <= 2  # continuous sampling changes discretizer and sampling
    assert {v.axis for v in variants} == {
        "base",
        "representation",
        "target",
        "kernel width",
        "num_samples",
    }


def test_the_next_base_takes_the_best_value_of_each_axis() -> None:
    same = [sets("abcde"), sets("abcde")]
    half = [sets("abcde"), sets("abcxy")]
    continuous = dataclasses.replace(SHIPPED, discretizer="none")
    log_odds = dataclasses.replace(SHIPPED, target="log_odds")
    wide = dataclasses.replace(SHIPPED, kernel_width_factor=3.0)
    runs = {
        "base": measured(SHIPPED, "base", 0.1, half),
        "continuous": measured(continuous, "representation", 0.3, same),
        "log-odds": measured(log_odds, "target", 0.3, half),
        "wide": measured(wide, "kernel width", 0.105, half),  # within the noise: not taken
    }
    chosen = next_base(SHIPPED, runs)
    assert chosen == dataclasses.replace(SHIPPED, discretizer="none", target="log_odds")


def test_best_keeps_the_base_unless_beaten_by_the_margin() -> None:
    assert best({"base": 0.50, "x": 0.505}, "base", min_gain=0.01) == "base"
    assert best({"base": 0.50, "x": 0.52}, "base", min_gain=0.01) == "x"


def test_stability_seed_estimates_against_the_reference_seeds() -> None:
    # seed 0 is shown; seeds 1-2 estimate; seeds 3-4 are the reference
    tops = [sets("abcde"), sets("abcde"), sets("abcxy"), sets("abcde"), sets("abcxy")]
    one, reference = seed_estimates(tops, k=1, reference_from=3)
    assert one == [1.0]
    assert reference == pytest.approx([(1 + 3 / 7) / 2])
    two, _ = seed_estimates(tops, k=2, reference_from=3)
    assert two == reference
    assert mean_abs_error(two, reference) == 0.0


def test_choose_k_takes_the_fewest_seeds_that_estimate_well_within_budget() -> None:
    errors = {1: 0.15, 2: 0.08, 3: 0.05}
    assert choose_k(errors, cost_ms=10.0, budget=100.0) == 2
    assert choose_k(errors, cost_ms=40.0, budget=100.0) == 1  # 2 seeds would cost 120 ms
    assert choose_k(errors, cost_ms=60.0, budget=100.0) == 0  # not even one fits


def test_budget_follows_the_flagged_load() -> None:
    # 1 % of 300/s = 3 explanations/s; half a process = 500 ms/s -> 166.7 ms each
    assert budget_ms(0.01) == pytest.approx(500 / 3)
    assert budget_ms(0.0) == math.inf


def test_recommend_stops_where_doubling_the_cost_buys_too_little() -> None:
    stability = {250: 0.32, 500: 0.43, 1000: 0.43, 2000: 0.57, 5000: 0.66}
    wall = {250: 7.6, 500: 10.2, 1000: 14.8, 2000: 24.4, 5000: 52.3}
    # 2000 -> 5000: +0.09 for 1.1 doublings (0.08 per doubling) is not worth it
    assert recommend(stability, wall, budget=100.0, gain=0.1) == 2000
    # a cheaper taste for stability goes further
    assert recommend(stability, wall, budget=100.0, gain=0.05) == 5000


def test_recommend_keeps_within_the_budget() -> None:
    stability = {250: 0.3, 1000: 0.45, 2000: 0.60, 5000: 0.80}
    wall = {250: 10.0, 1000: 30.0, 2000: 60.0, 5000: 140.0}
    assert recommend(stability, wall, budget=100.0) == 2000  # 5000 would be worth it, but
    assert recommend(stability, wall, budget=200.0) == 5000
    assert recommend(stability, wall, budget=5.0) == 250  # nothing fits: the cheapest


def test_recommend_ignores_noise_that_buys_nothing() -> None:
    stability = {1000: 0.60, 2000: 0.61, 5000: 0.62}
    wall = {1000: 30.0, 2000: 60.0, 5000: 140.0}
    assert recommend(stability, wall, budget=200.0) == 1000


def test_nearest_rank_percentiles() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 95) == 95.0
    assert percentile([3.0], 95) == 3.0


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("/x/.venv/lib/python3.11/site-packages/asyncpg/pool.py", "asyncpg"),
        ("/x/.venv/lib/python3.11/site-packages/opentelemetry/sdk/trace/__init__.py", "OpenTel"),
        ("/root/.pyenv/versions/3.11.7/lib/python3.11/logging/__init__.py", "logging"),
        ("/work/main/fraudsvc/telemetry/logs.py", "logging"),
        ("/work/main/fraudsvc/pipeline.py", "fraudsvc's own code"),
        ("/root/.pyenv/versions/3.11.7/lib/python3.11/json/decoder.py", "other"),
    ],
)
def test_profile_areas_by_source_file(filename: str, expected: str) -> None:
    found = area(filename)
    assert found is not None
    assert found.startswith(expected)


def test_c_functions_have_no_area_of_their_own() -> None:
    assert area("~") is None


def test_quick_plan_is_small_and_full_plan_is_a_million_rows() -> None:
    quick, full = make_plan(True, None), make_plan(False, None)
    assert quick.repeat == 1
    assert full.repeat == 3
    # rows grow with customer-days: about 1M rows against 214k
    assert full.data.customers * full.data.days >= 4 * quick.data.customers * quick.data.days
    assert make_plan(False, 5).repeat == 5
    assert set(full.lime_samples) == {500, 1000, 2000, 5000}
    assert 0.75 in full.lime_kernel_widths
    assert full.lime_k_seeds > full.lime_max_k + 1  # seeds left over for the reference


def test_report_markdown_has_targets_figures_tables_and_notes(tmp_path: Path) -> None:
    report = Report()
    report.add("s", Figure("speed", "req/s", [1.0, 3.0, 2.0], "n"))
    report.table("s", "T", ["a", "b"], [["1", "2"]], "table note")
    report.note("s", "a note")
    report.verdict("speed >= 2", "2", ok=True)
    report.note("errors", "x failed")
    facts = {
        "cpu": "c",
        "cores": 2,
        "memory_gib": 1.0,
        "python": "3",
        "commit": "abc",
        "versions": {"wrk": "4"},
    }
    text = report.markdown(facts)
    assert "| speed >= 2 | 2 | met |" in text
    assert "| speed | 2.000 | req/s | 1.000, 3.000, 2.000 | n |" in text
    assert "### T" in text
    assert "a note" in text
    assert text.index("## errors") < text.index("## s")
    data = report.to_json(facts)
    assert data["sections"]["s"]["figures"][0]["median"] == 2.0


def test_the_metrics_scraper_times_each_render_and_counts_failures() -> None:
    body = b"# TYPE x counter\nx_total 1\n"

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/metrics"
    try:
        with Scraper(url, 0.02) as scraper:
            time.sleep(0.3)
    finally:
        server.shutdown()
        server.server_close()
    assert len(scraper.seconds) >= 3
    assert scraper.sizes == [len(body)] * len(scraper.seconds)
    assert scraper.failures == 0

    with Scraper(url, 0.02) as down:  # the server is gone: every scrape fails, none is timed
        time.sleep(0.15)
    assert down.failures >= 2
    assert down.seconds == []


def test_free_ports_are_distinct_and_bindable() -> None:
    ports = free_ports(8)
    assert len(set(ports)) == 8
    with socket.socket() as s:  # released: a server can bind them
        s.bind(("127.0.0.1", ports[0]))


def test_running_tells_a_live_process_from_an_exited_one() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while running(child.pid) and time.monotonic() < deadline:
        time.sleep(0.01)  # exited but not reaped: a zombie, which does not run
    assert not running(child.pid)
    child.wait()
    assert not running(child.pid)  # reaped: gone
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert running(sleeper.pid)
    finally:
        sleeper.kill()
        sleeper.wait()


def test_the_machine_counters_split_busy_stolen_and_idle_time() -> None:
    busy, stolen, idle = machine_cpu_seconds()
    assert busy > 0
    assert stolen >= 0
    assert idle >= 0
    # a run's share: what neither the server, its backends nor wrk used, and what nobody could
    used = machine_cpu((10.0, 1.0, 50.0), (17.0, 1.5, 52.5), accounted=5.0, postgres_background=1.0)
    assert used == {
        "postgres_background_s": 1.0,
        "rest_s": 1.0,
        "steal_s": 0.5,
        "idle_s": 2.5,
    }
