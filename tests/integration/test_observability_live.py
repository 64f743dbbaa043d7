"""The dashboards and the alert rules against the running service and a real Prometheus.

One run of the service (web with the embedded worker, every transaction explained) serves a
short replayed load on top of a backfilled history (so the drift gauges compare like with like),
while a real Prometheus scrapes web and worker every second with the project's prometheus.yml
(only the targets and intervals changed) and evaluates the project's alerts.yml. Then:

- every metric name the dashboards and rules read is exposed by the live web or worker /metrics;
- every dashboard query returns data from that Prometheus;
- every rule evaluates without error, every alert's expression is silent, the series each
  alert watches exist, and no alert is pending or firing on this healthy run.

Grafana's $__rate_interval, $__interval and $__range become the age of the run, so a rate
covers the whole load.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import polars as pl
import pytest
import yaml  # type: ignore[import-untyped]  # PyYAML ships no type information

from fraudsvc.contract import load_contract_file
from fraudsvc.db.backfill import backfill
from fraudsvc.features import DECLARATION
from fraudsvc.processes import free_port
from fraudsvc.replay import ReplayOptions, ReplayReport, replay
from fraudsvc.settings import Settings
from fraudsvc.telemetry.metrics import WEB_METRICS, WORKER_METRICS
from tests.observability import files
from tests.raw_windows import TRUNCATE
from tests.service import ADMIN_KEY, API_KEY, running_service, service_env

pytestmark = pytest.mark.slow

PROMETHEUS = "/usr/bin/prometheus"
CUT = datetime(2026, 4, 8, 9, tzinfo=UTC)  # in the test period of small_data (the model's data)
HISTORY = timedelta(days=40)  # the longest window (30 days) plus the label delay, and a margin
TRANSACTIONS = 500
RATE = 50.0  # requests per second: the load lasts about 10 s


@dataclass
class PrometheusServer:
    url: str
    started: float

    async def get(self, client: httpx.AsyncClient, path: str, **params: str) -> Any:
        response = await client.get(f"{self.url}{path}", params=params)
        body = response.json()
        assert response.status_code == 200, f"{path} {params}: {body}"
        assert body["status"] == "success", f"{path} {params}: {body}"
        return body["data"]

    async def query(self, client: httpx.AsyncClient, expr: str) -> list[dict[str, Any]]:
        data = await self.get(client, "/api/v1/query", query=expr)
        assert data["resultType"] == "vector", f"{expr}: {data['resultType']}"
        result: list[dict[str, Any]] = data["result"]
        return result

    def window(self) -> str:
        """The age of this Prometheus as a duration, for Grafana's interval variables."""
        return f"{math.ceil(time.monotonic() - self.started) + 2}s"


def scrape_config(web: str, worker: str, prometheus: str) -> dict[str, Any]:
    """The project's prometheus.yml with loopback targets and 1 s scrapes and evaluations."""
    config: dict[str, Any] = files.load_yaml(files.PROMETHEUS_CONFIG)
    config["global"] |= {
        "scrape_interval": "1s",
        "scrape_timeout": "1s",
        "evaluation_interval": "1s",
    }
    config["rule_files"] = [str(files.ALERTS)]
    targets = {"fraudsvc-web": web, "fraudsvc-worker": worker, "prometheus": prometheus}
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(targets) <= set(jobs), f"prometheus.yml scrapes {sorted(jobs)}"
    for name, target in targets.items():
        jobs[name].pop("scrape_interval", None)
        jobs[name]["static_configs"] = [{"targets": [target]}]
    return config


@contextlib.asynccontextmanager
async def running_prometheus(tmp: Path, web: str, worker: str) -> AsyncIterator[PrometheusServer]:
    """A real Prometheus on a free loopback port, its data in `tmp`, stopped at the end."""
    port = free_port()
    config = tmp / "prometheus.yml"
    config.write_text(yaml.safe_dump(scrape_config(web, worker, f"127.0.0.1:{port}")))
    log = tmp / "prometheus.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
        )
    server = PrometheusServer(f"http://127.0.0.1:{port}", time.monotonic())
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            for _ in range(300):
                assert process.returncode is None, f"prometheus exited:\n{log.read_text()}"
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{server.url}/-/ready")).status_code == 200:
                        break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError(f"prometheus not ready within 15 s:\n{log.read_text()}")
        yield server
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 15)
        except TimeoutError:
            process.kill()
            await process.wait()


async def execute(database_url: str, sql: str) -> Any:
    connection = await asyncpg.connect(database_url)
    try:
        return await connection.fetchval(sql)
    finally:
        await connection.close()


@dataclass
class LiveRun:
    web_url: str
    worker_url: str
    report: ReplayReport
    prometheus: PrometheusServer | None
    why_no_prometheus: str


async def publish_rules(client: httpx.AsyncClient, frame: pl.DataFrame) -> None:
    """A live rule and a shadow one that fire on the replayed stream, and a list: the rule
    panels and alerts have series to read."""
    admin = {"X-API-Key": ADMIN_KEY}
    customers = frame.filter(pl.col("timestamp") >= CUT)["customer_id"].unique().sort()[:20]
    await client.put("/v1/lists/watched_customers", json={"kind": "customer"}, headers=admin)
    entries = [{"value": c, "reason": "observability test"} for c in customers]
    await client.post(
        "/v1/lists/watched_customers/entries", json={"entries": entries}, headers=admin
    )
    rules = {
        "rules": [
            {
                "id": "watched",
                "expression": "customer_id in @watched_customers",
                "action": "review",
            },
            {"id": "big", "expression": "amount > 100", "action": "block", "mode": "shadow"},
        ]
    }
    version = (await client.post("/v1/rulesets", json=rules, headers=admin)).json()["version"]
    published = await client.post(f"/v1/rulesets/{version}/publish", headers=admin)
    assert published.status_code == 200, published.text
    await asyncio.sleep(1.5)  # the process follows within a second


@pytest.fixture(scope="module")
async def live(
    registry_dir: Path,
    database_url: str,
    small_data: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[LiveRun]:
    """The service under a replayed load, scraped by Prometheus (when it is installed)."""
    empty = TRUNCATE
    await execute(database_url, empty)
    frame = load_contract_file(small_data, True).frame
    frame = frame.filter(pl.col("timestamp") >= CUT - HISTORY)
    worker_port = free_port()
    settings = Settings.from_env(
        service_env(
            registry_dir,
            database_url,
            FRAUDSVC_EXPLAIN="all",
            FRAUDSVC_LIME_NUM_SAMPLES="500",
            FRAUDSVC_EXPLAIN_PROCESSES="1",
            FRAUDSVC_WORKER_METRICS_HOST="127.0.0.1",
            FRAUDSVC_WORKER_METRICS_PORT=str(worker_port),
            FRAUDSVC_MONITOR_INTERVAL_SECONDS="1",
            FRAUDSVC_MONITOR_WINDOW="500",
        )
    )
    async with contextlib.AsyncExitStack() as stack:
        client = await stack.enter_async_context(running_service(settings, with_worker=True))
        web = str(client.base_url).removeprefix("http://").rstrip("/")
        worker = f"127.0.0.1:{worker_port}"
        prometheus = None
        why = f"{PROMETHEUS} is missing: install the Debian package `prometheus`"
        if shutil.which(PROMETHEUS) is not None:
            tmp = tmp_path_factory.mktemp("prometheus")
            prometheus = await stack.enter_async_context(running_prometheus(tmp, web, worker))
        await backfill(frame, CUT, timedelta(seconds=DECLARATION.label_delay))
        await publish_rules(client, frame)
        options = ReplayOptions(url=str(client.base_url), api_key=API_KEY, rate=RATE)
        report = await replay(frame, options, start=CUT, limit=TRANSACTIONS)
        assert report.statuses == {201: TRANSACTIONS}, report.summary()
        unfinished = "SELECT count(*) FROM explanations WHERE status IN ('pending', 'running')"
        # 500 explanations by one LIME process: seconds, on a busy machine more
        for _ in range(1800):
            if await execute(database_url, unfinished) == 0:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("explanations still open after 180 s")
        await asyncio.sleep(3)  # a few more scrapes and rule evaluations of the final state
        yield LiveRun(f"http://{web}", f"http://{worker}", report, prometheus, why)
    await execute(database_url, empty)
    await execute(database_url, "DELETE FROM ruleset_live")
    await execute(database_url, "DELETE FROM lists")


def sample_names(exposition: str) -> set[str]:
    """Series names in a Prometheus text exposition (samples, not HELP/TYPE lines)."""
    return {
        line.split("{", 1)[0].split(" ", 1)[0]
        for line in exposition.splitlines()
        if line and not line.startswith("#")
    }


def family(name: str) -> str:
    for suffix in files.HISTOGRAM_SUFFIXES:
        if name.removesuffix(suffix) in files.histogram_names():
            return name.removesuffix(suffix)
    return name


async def test_dashboards_and_rules_read_only_metrics_the_live_processes_expose(
    live: LiveRun,
) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        web = sample_names((await client.get(f"{live.web_url}/metrics")).text)
        worker = sample_names((await client.get(f"{live.worker_url}/metrics")).text)
    read = set(files.used_metric_names()) - files.recording_rule_names() - files.PROMETHEUS_OWN
    assert read, "the dashboards and rules read no metric"
    assert read - (web | worker) == set(), "read but exposed by neither process"
    # each name from the process that defines it (the shared error counters from both)
    assert {n for n in read if family(n) in WEB_METRICS} <= web
    assert {n for n in read if family(n) in WORKER_METRICS} <= worker


def prometheus_of(live: LiveRun) -> PrometheusServer:
    if live.prometheus is None:
        pytest.skip(live.why_no_prometheus)
    return live.prometheus


def has_data(result: list[dict[str, Any]]) -> bool:
    return any(not math.isnan(float(sample["value"][1])) for sample in result)


async def test_every_dashboard_query_returns_data_from_prometheus(live: LiveRun) -> None:
    prometheus = prometheus_of(live)
    window = prometheus.window()
    values = {"__rate_interval": window, "__interval": window, "__range": window}
    empty = []
    async with httpx.AsyncClient(timeout=10) as client:
        for query in files.panel_queries():
            expr = files.substitute(query.expr, values)
            if not has_data(await prometheus.query(client, expr)):
                empty.append(f"{query.where}: {expr}")
    assert empty == [], "panels without data:\n" + "\n".join(empty)


async def test_rules_evaluate_and_no_alert_fires_on_a_healthy_run(live: LiveRun) -> None:
    prometheus = prometheus_of(live)
    async with httpx.AsyncClient(timeout=10) as client:
        groups = (await prometheus.get(client, "/api/v1/rules"))["groups"]
        loaded = [rule for group in groups for rule in group["rules"]]
        assert len(loaded) == len(files.rules()), "Prometheus loaded another rule set"
        broken = [f"{r['name']}: {r.get('lastError')}" for r in loaded if r["health"] != "ok"]
        assert broken == [], "rules that fail to evaluate"

        for name in sorted(files.recording_rule_names()):
            assert has_data(await prometheus.query(client, name)), f"{name} records nothing"

        unwatched, triggered = [], []
        for rule in files.alert_rules():
            if await prometheus.query(client, rule["expr"]):
                triggered.append(rule["alert"])
            for operand in files.alert_operands(rule["expr"]):
                if not await prometheus.query(client, operand):
                    unwatched.append(f"{rule['alert']}: {operand}")
        assert unwatched == [], "alerts watching series that do not exist (they can never fire)"
        assert triggered == [], "alert expressions true on a healthy run"

        alerts = (await prometheus.get(client, "/api/v1/alerts"))["alerts"]
        assert [(a["labels"]["alertname"], a["state"]) for a in alerts] == []
