"""`make demo`: from a clean clone to a scoring service with explanations, and the proof.

1. PostgreSQL and Redis: the URL variables, else the local servers, else embedded ones.
2. Migrations; 3. synthetic data (unless DATA_CSV exists); 4. a champion model (unless one is
   registered); 5. history: every transaction before the last 3 days of the data, with the labels
   known by then (`fraudsvc backfill`); 6. `fraudsvc web` and `fraudsvc worker`;
7. the analyst's answer to the history: a list and a ruleset, live (`demo_rules`);
8. a few thousand transactions of the last days through the HTTP API (`fraudsvc replay`), each
   run continuing where the previous one stopped; 9. an analyst account for the review queue
   (`fraudsvc analysts add`, a new password each run, printed in the summary), who signs in at
   /review, works the top case to a verdict and reads its label through the API; 10. the flagged
   transactions' explanations; 11. the chargebacks of the replayed payments, and a backtest of
   the ruleset against them.

Then the summary (decision mix, rule hits, latency, online quality, the backtest, one
explanation in full, the feature buckets, the URLs),
and the service keeps running until Ctrl-C, which stops everything the demo started.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import polars as pl
from loguru import logger

from fraudsvc import demo_review, demo_rules
from fraudsvc.contract import load_contract_file
from fraudsvc.datagen import GeneratorConfig, generate
from fraudsvc.db.admin import migrate
from fraudsvc.embedded import Services, find_or_start
from fraudsvc.model import registry
from fraudsvc.processes import Service, answers, fraudsvc, free_port, wait_http
from fraudsvc.progress import Stages
from fraudsvc.replay import ReplayOptions, ReplayReport, replay
from fraudsvc.settings import Settings
from fraudsvc.telemetry.logs import setup_logging
from fraudsvc.training.pipeline import TrainOptions, train

T = TypeVar("T")
EXPLANATION_WAIT_SECONDS = 90.0
LIVE_DAYS = timedelta(days=3)  # the stream the runs replay: about four runs of 3,000

DEMO_ANALYST = "demo-analyst"


@dataclass
class Demo:
    settings: Settings
    env: dict[str, str]
    api_key: str
    admin_key: str
    url: str
    worker_url: str
    logs: Path
    notes: list[str] = field(default_factory=list)
    """Lines for the summary, gathered on the way (the lift, the rules, the backtest)."""


def _port(preferred: int) -> int:
    return preferred if not answers(preferred) else free_port()


def _environment(base: Settings, services: Services) -> tuple[dict[str, str], str, str]:
    key = os.environ.get("FRAUDSVC_API_KEY") or "demo-" + secrets.token_hex(8)
    admin = "demo-admin-" + secrets.token_hex(8)
    env = {
        **os.environ,
        "DATABASE_URL": services.database_url,
        "REDIS_URL": services.redis_url,
        "FRAUDSVC_API_KEYS": os.environ.get("FRAUDSVC_API_KEYS") or key,
        "FRAUDSVC_ADMIN_KEYS": admin,
        "FRAUDSVC_PORT": str(_port(base.api.port)),
        "FRAUDSVC_WORKER_METRICS_PORT": str(_port(base.worker.metrics_port)),
        "FRAUDSVC_LOG_FORMAT": "json",
    }
    return env, key, admin


async def _scalar(url: str, sql: str) -> Any:
    connection = await asyncpg.connect(url)
    try:
        return await connection.fetchval(sql)
    finally:
        await connection.close()


def _backfill_needed(database_url: str, cut: datetime) -> bool:
    stored = asyncio.run(_scalar(database_url, "SELECT max(ts) FROM transactions"))
    return stored is None or stored < cut - timedelta(days=1)


def _resume_from(database_url: str, cut: datetime) -> datetime:
    last = asyncio.run(
        _scalar(
            database_url,
            "SELECT max(t.ts) FROM transactions AS t JOIN predictions AS p USING (transaction_id)",
        )
    )
    return cut if last is None or last < cut else last + timedelta(microseconds=1)


async def _explanation_of_a_flagged(demo: Demo, report: ReplayReport) -> dict[str, Any] | None:
    """Wait for the explanations the policy asked for; return one of a flagged transaction."""
    headers = {"X-API-Key": demo.api_key}
    async with httpx.AsyncClient(base_url=demo.url, headers=headers, timeout=10) as client:
        deadline = time.monotonic() + EXPLANATION_WAIT_SECONDS
        flagged = [t for t, d in report.decisions_by_id.items() if d != "allow"]
        chosen: dict[str, Any] | None = None
        for tid in flagged:
            while time.monotonic() < deadline:
                body: dict[str, Any] = (
                    await client.get(f"/v1/transactions/{tid}/explanation")
                ).json()
                if body.get("status") in ("done", "failed"):
                    break
                await asyncio.sleep(0.5)
            if body.get("status") == "done":
                chosen = chosen or body
        return chosen


def _explanation_text(body: dict[str, Any]) -> list[str]:
    model, p = body["model"], body["parameters"]
    scale = "log-odds" if body["target"] == "log_odds" else "probability"
    stability = (
        f"top-5 stability {body['stability']:.2f} over {p['stability_seeds']} more seed(s)"
        if body["stability"] is not None
        else "no stability seeds"
    )
    lines = [
        f"  transaction   {body['transaction_id']}  (model {model['name']} v{model['version']})",
        f"  score         {body['score']:.4f}   ({scale} {body['model_output']:.3f})",
        f"  LIME ({scale}) local prediction {body['local_prediction']:.3f} (error "
        f"{body['local_error']:+.3f})   intercept {body['intercept']:.3f}   local fit R² "
        f"{body['local_fit_r2']:.3f}   {stability}",
        f"  computed in   {body['duration_ms']:.0f} ms ({body['predict_ms']:.0f} ms in the model), "
        f"{p['num_samples']} samples, seed {p['seed']}",
        f"  weights on the {scale} (toward fraud +, toward genuine -; continuous: per step):",
    ]
    for w in body["weights"]:
        step = f"  per {w['step']:.4g}" if w.get("step") is not None else ""
        lines.append(f"    {w['weight']:+.4f}  {w['condition']:<46}{step}")
    return lines


BUCKETS_SQL = """
SELECT b.entity, count(*) AS buckets, e.horizon IS NOT NULL AS deferred,
       extract(epoch FROM now() - e.horizon)::int AS lag
FROM feature_buckets AS b JOIN feature_entities AS e ON e.name = b.entity
GROUP BY b.entity, e.horizon ORDER BY b.entity
"""


async def _bucket_lines(url: str) -> list[str]:
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch(BUCKETS_SQL)
        stored = await connection.fetchval("SELECT count(*) FROM transactions")
    finally:
        await connection.close()
    lines = [f"feature buckets (the windows' partial sums) for {stored:,} stored transactions:"]
    for r in rows:
        kind = (
            f"deferred, folded up to {r['lag']} s ago by the worker"
            if r["deferred"]
            else "kept by triggers in the write's transaction"
        )
        lines.append(f"  {r['entity']:<16}{r['buckets']:>10,} buckets   {kind}")
    return lines


def _summary(demo: Demo, report: ReplayReport, explanation: dict[str, Any] | None) -> str:
    worker = demo.worker_url
    lines = [report.summary(), "", *demo.notes, "", "one explanation, in full:"]
    lines += _explanation_text(explanation) if explanation else ["  (none finished in time)"]
    lines += ["", *asyncio.run(_bucket_lines(demo.settings.database.url))]
    lines += [
        "",
        "fraudsvc is running:",
        f"  API docs      {demo.url}/docs",
        f"  readiness     {demo.url}/readyz",
        f"  metrics       {demo.url}/metrics   (worker: {worker}/metrics)",
        f"  API key       {demo.api_key}   (admin: {demo.admin_key})",
        f"  logs          {demo.logs}",
        "  try           curl -s -H 'X-API-Key: "
        f"{demo.api_key}' {demo.url}/v1/transactions/<transaction_id>",
    ]
    return "\n".join(lines)


def _analyst(env: dict[str, str]) -> str:
    """The demo's analyst, made (or given a new password) with the CLI as a person would; the
    password is new each run and printed once, for the review queue's sign-in."""
    password = secrets.token_urlsafe(12)
    for action in ("add", "password"):
        done = subprocess.run(
            fraudsvc("analysts", action, DEMO_ANALYST),
            env=env,
            input=password + "\n",
            text=True,
            capture_output=True,
        )
        if done.returncode == 0:
            return password
    raise RuntimeError(f"fraudsvc analysts failed: {done.stderr.strip()}")


def _check_ours(demo: Demo, started: list[Service]) -> None:
    """The processes that answer are the ones just started (on a shared machine another program
    can take a port between the choice and the bind): both alive, and the web process knows
    this run's admin key."""
    for service in started:
        if not service.alive():
            raise RuntimeError(f"fraudsvc {service.name} exited at startup: see {service.log}")
    answer = httpx.get(f"{demo.url}/v1/rulesets", headers={"X-API-Key": demo.admin_key}, timeout=10)
    if answer.status_code != 200:
        raise RuntimeError(
            f"{demo.url} answers, but not as the web process this demo started "
            f"({answer.status_code}): another program took the port; set FRAUDSVC_PORT"
        )


def _model_lines(settings: Settings, champion: registry.VersionRef | None) -> list[str]:
    if champion is None or champion.run_id is None:
        return []
    metrics = registry.client(settings.mlflow).get_run(champion.run_id).data.metrics
    line = (
        f"model {champion.name} v{champion.version}: test average precision "
        f"{metrics.get('test_average_precision', math.nan):.3f}, ROC AUC "
        f"{metrics.get('test_roc_auc', math.nan):.3f}"
    )
    if "baseline_features_test_average_precision" not in metrics:
        return [line]
    return [
        line,
        "  the same LightGBM on the baseline features alone: average precision "
        f"{metrics['baseline_features_test_average_precision']:.3f}, ROC AUC "
        f"{metrics['baseline_features_test_roc_auc']:.3f} (the payment attributes' lift: "
        f"{metrics['lift_test_average_precision']:+.3f} average precision)",
    ]


async def _admin(demo: Demo, work: Callable[[httpx.AsyncClient], Awaitable[T]]) -> T:
    headers = {"X-API-Key": demo.admin_key}
    async with httpx.AsyncClient(base_url=demo.url, headers=headers, timeout=60) as client:
        return await work(client)


async def _judged(
    client: httpx.AsyncClient,
    frame: pl.DataFrame,
    report: ReplayReport,
    published: demo_rules.Published,
) -> list[str]:
    """Post the replayed frauds' chargebacks, then backtest the live ruleset on the replay."""
    sent = frame.filter(pl.col("transaction_id").is_in(list(report.scores)))
    if sent.is_empty():
        return []
    frauds = sent.filter(pl.col("is_fraud") == 1)["transaction_id"].to_list()
    posted = await demo_rules.post_chargebacks(client, frauds)
    first, last = sent["timestamp"].min(), sent["timestamp"].max()
    assert isinstance(first, datetime) and isinstance(last, datetime)
    end = last + timedelta(microseconds=1)
    lines = await demo_rules.backtest(client, published.version, first, end)
    return [f"{posted:,} chargebacks of the replayed payments posted; the backtest:", *lines]


def run(transactions: int, wait: bool) -> int:
    base = Settings.from_env()
    demo_dir = base.paths.data_dir / "demo"
    stages = Stages(total=11)
    started: list[Service] = []
    notes: list[str] = []
    with stages.stage("PostgreSQL and Redis"):
        services = find_or_start(
            demo_dir, os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
        )
        for note in services.notes:
            logger.info("  {}", note)
    try:
        env, key, admin = _environment(base, services)
        settings = Settings.from_env(env)
        with stages.stage("migrations"):
            asyncio.run(migrate(settings.database))
        data = settings.paths.data_file
        with stages.stage("synthetic data"):
            if data.exists():
                logger.info("  reusing {}", data)
            else:
                result = generate(GeneratorConfig(), data)
                logger.info("  {:,} transactions in {:.1f} s", result.rows, result.seconds)
        with stages.stage("champion model"):
            ms = settings.mlflow
            champion = registry.version_for_alias(ms, ms.model_name, ms.model_alias)
            if champion is not None:
                logger.info("  reusing {} v{}", ms.model_name, champion.version)
            else:
                trained = train(settings, TrainOptions(data=data))
                logger.info("  {}", trained.promotion.reason)
                champion = registry.version_for_alias(ms, ms.model_name, ms.model_alias)
            notes += _model_lines(settings, champion)
        frame = load_contract_file(data, require_labels=True).frame
        last = frame["timestamp"].max()
        assert isinstance(last, datetime)
        cut = datetime(last.year, last.month, last.day, tzinfo=last.tzinfo) - LIVE_DAYS
        with stages.stage(f"history before {cut.date()}"):
            if _backfill_needed(settings.database.url, cut):
                argv = fraudsvc("backfill", str(data), "--until", cut.date().isoformat())
                subprocess.run(argv, env=env, check=True, capture_output=True)
            logger.info("  history in place (fraudsvc backfill --until {})", cut.date())
        logs = demo_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        url = f"http://127.0.0.1:{env['FRAUDSVC_PORT']}"
        worker_url = f"http://127.0.0.1:{env['FRAUDSVC_WORKER_METRICS_PORT']}"
        demo = Demo(settings, env, key, admin, url, worker_url, logs, notes)
        with stages.stage("start web and worker"):
            started.append(Service("web", fraudsvc("web"), env, logs / "web.log").start())
            started.append(Service("worker", fraudsvc("worker"), env, logs / "worker.log").start())
            wait_http(f"{url}/readyz", seconds=120)
            wait_http(f"{worker_url}/healthz", seconds=120)
            _check_ours(demo, started)
        with stages.stage("the analyst: a list and a ruleset, live"):
            published = asyncio.run(_admin(demo, lambda c: demo_rules.publish(c, frame, cut)))
            logger.info(
                "  @{}: {} terminals; ruleset v{} live ({} rules)",
                demo_rules.LIST_NAME,
                published.listed,
                published.version,
                len(demo_rules.RULES),
            )
        start = _resume_from(settings.database.url, cut)
        with stages.stage(f"replay {transactions:,} transactions through the API"):
            options = ReplayOptions(url=url, api_key=key, concurrency=8)
            report = asyncio.run(replay(frame, options, start=start, limit=transactions))
            if report.sent == 0:
                logger.warning("  the file is exhausted: remove {} to start over", data)
        with stages.stage("an analyst works the top case of the review queue"):
            analyst_password = _analyst(env)
            logger.info("  {} (fraudsvc analysts add, password from stdin)", DEMO_ANALYST)
            worked = asyncio.run(
                demo_review.work_top_case(url, demo.api_key, DEMO_ANALYST, analyst_password, frame)
            )
            notes += demo_review.lines(worked, DEMO_ANALYST)
        with stages.stage("explanations of the flagged transactions"):
            explanation = asyncio.run(_explanation_of_a_flagged(demo, report))
        with stages.stage("chargebacks of the replayed payments, and a backtest"):
            notes += asyncio.run(_admin(demo, lambda c: _judged(c, frame, report, published)))
        print(_summary(demo, report, explanation), flush=True)
        print(
            f"  review queue  {url}/review   (analyst {DEMO_ANALYST}, password {analyst_password})",
            flush=True,
        )
        if wait:
            print("\nPress Ctrl-C to stop everything the demo started.", flush=True)
            while True:
                time.sleep(3600)
        return 0
    finally:
        for service in reversed(started):
            service.stop()
        services.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fraudsvc.demo", description=__doc__)
    parser.add_argument("--transactions", type=int, default=3_000, help="to replay (default 3000)")
    parser.add_argument("--no-wait", action="store_true", help="stop after the summary")
    args = parser.parse_args(argv)
    setup_logging("INFO", "text")

    def terminate(signum: int, _: object) -> None:
        raise SystemExit(128 + signum)  # unwinds like Ctrl-C: everything started is stopped

    signal.signal(signal.SIGTERM, terminate)
    try:
        return run(args.transactions, wait=not args.no_wait)
    except KeyboardInterrupt:
        print("\nstopped", flush=True)
        return 130


if __name__ == "__main__":
    sys.exit(main())
