"""The `fraudsvc` command: the only place that parses argv.

Each subcommand builds the settings from the environment, sets up logging and imports what it
needs only when it runs, so `fraudsvc --help` stays fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from fraudsvc import __version__
from fraudsvc.settings import Settings, SettingsError

if TYPE_CHECKING:
    import polars as pl

Handler = Callable[[argparse.Namespace, Settings], int]
SERVICE_ROLES = {"web", "worker"}  # JSON logs by default


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD)") from exc


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return number


def _non_negative(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"{value} must be 0 or more")
    return number


# --------------------------------------------------------------------------- generate


def cmd_generate(args: argparse.Namespace, settings: Settings) -> int:
    from loguru import logger

    from fraudsvc.datagen import GeneratorConfig, generate

    cfg = GeneratorConfig(
        customers=args.customers,
        terminals=args.terminals,
        days=args.days,
        start=datetime(args.start.year, args.start.month, args.start.day, tzinfo=UTC),
        seed=args.seed,
        merchant_sizes=args.merchant_sizes,
        fields=args.fields,
    )
    out = args.out or settings.paths.data_file
    logger.info(
        "generating {} days for {:,} customers and {:,} terminals (seed {}, {} merchant sizes, "
        "{} fields) into {}",
        cfg.days,
        cfg.customers,
        cfg.terminals,
        cfg.seed,
        cfg.merchant_sizes,
        cfg.fields,
        out,
    )

    def progress(day: int, days: int, rows: int) -> None:
        logger.info("  day {}/{}: {:,} rows", day, days, rows)

    result = generate(cfg, out, progress=progress)
    print(
        f"\nwrote {result.rows:,} transactions to {result.path} in {result.seconds:.1f} s "
        f"({result.rows / max(result.seconds, 1e-9):,.0f} rows/s)\n"
        f"frauds: {result.frauds:,} ({result.frauds / max(1, result.rows):.2%})"
    )
    for scenario, count in result.by_scenario.items():
        print(f"  {scenario:<26}{count:>12,}")
    print(f"busiest terminal: {result.largest_terminal_share:.2%} of all transactions")
    if result.by_channel:
        print("channels:")
    for channel, count in result.by_channel.items():
        print(f"  {channel:<26}{count:>12,}  {count / max(1, result.rows):6.1%}")
    return 0


# --------------------------------------------------------------------------- train


def _database_frame(settings: Settings) -> pl.DataFrame:
    import asyncio

    from fraudsvc.db import engine
    from fraudsvc.db.export import training_frame

    async def load() -> pl.DataFrame:
        await engine.start_pool(settings.database)
        try:
            return await training_frame()
        finally:
            await engine.close_pool()

    return asyncio.run(load())


def cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    from fraudsvc.training.pipeline import TrainOptions, train
    from fraudsvc.training.report import summary
    from fraudsvc.training.split import SplitOptions

    if args.from_db and args.data:
        print("fraudsvc train: give --data or --from-db, not both", file=sys.stderr)
        return 2
    frame = _database_frame(settings) if args.from_db else None
    options = TrainOptions(
        frame=frame,
        frame_source="database (stored transactions and labels)",
        data=args.data,
        split=SplitOptions(
            warmup_days=args.warmup_days,
            valid_days=args.valid_days,
            test_days=args.test_days,
            gap_days=args.gap_days,
            train_start=args.train_start,
            train_end=args.train_end,
            test_start=args.test_start,
            test_end=args.test_end,
        ),
        resampling=args.resampling,
        seed=args.seed,
        max_rounds=args.max_rounds,
        block_precision=args.block_precision,
        review_budget=args.review_budget,
        register=not args.no_register,
    )
    result = train(settings, options)
    print(summary(result))
    return 0


# --------------------------------------------------------------------------- evaluate


def cmd_evaluate(args: argparse.Namespace, settings: Settings) -> int:
    from fraudsvc.training.evaluate import backtest, summary

    result = backtest(settings, args.file, args.model, args.start, args.end, args.out)
    print(summary(result))
    return 0


# --------------------------------------------------------------------------- services


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from fraudsvc.db.admin import database_name, migrate

    applied = asyncio.run(migrate(settings.database, ahead=settings.worker.partitions_ahead))
    print(f"database {database_name(settings.database.url)}: {len(applied)} migration(s) in place")
    for migration in applied:
        print(f"  {migration}")
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    if args.check:
        from fraudsvc.jobs.worker import check

        healthy, detail = asyncio.run(check(settings))
        print(detail)
        return 0 if healthy else 1
    # before the heavy imports below: a restarted worker's start-up yields to scoring too
    lower_priority(settings.worker.nice)
    from fraudsvc.jobs.service import run
    from fraudsvc.telemetry.tracing import setup_tracing

    setup_tracing("fraudsvc-worker")
    asyncio.run(run(settings))
    return 0


def lower_priority(nice: int) -> None:
    """Add `nice` to this process's CPU niceness (children inherit it). A kernel that refuses
    (a seccomp profile) leaves the priority as it was, with a warning."""
    if nice <= 0:
        return
    from loguru import logger

    try:
        os.nice(nice)
    except OSError as exc:
        logger.warning("could not lower the worker's CPU priority by {}: {}", nice, exc)


def cmd_web(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from fraudsvc.app import serve_app
    from fraudsvc.telemetry.tracing import setup_tracing

    setup_tracing("fraudsvc-web")
    app = serve_app(settings, with_worker=args.with_worker)
    uvicorn.run(
        app,
        host=args.host or settings.api.host,
        port=args.port or settings.api.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=10,
    )
    return 0


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def cmd_backfill(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from fraudsvc.contract import load_contract_file
    from fraudsvc.db import engine
    from fraudsvc.db.backfill import backfill
    from fraudsvc.features import DECLARATION

    # rows from the future would sit in the feature buckets for ever
    latest = datetime.now(UTC) + timedelta(seconds=settings.api.max_clock_skew_seconds)
    frame = load_contract_file(args.file, require_labels=False, latest=latest).frame
    until = _midnight(args.until) if args.until else None

    async def run() -> None:
        await engine.start_pool(settings.database)
        try:
            result = await backfill(
                frame,
                until,
                timedelta(seconds=DECLARATION.label_delay),
                ahead=settings.worker.partitions_ahead,
            )
        finally:
            await engine.close_pool()
        print(
            f"imported {result.transactions:,} transactions ({result.skipped:,} already stored) "
            f"and {result.labels:,} fraud labels"
            + (f", as known on {args.until}" if args.until else "")
        )

    asyncio.run(run())
    return 0


def cmd_prune(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from fraudsvc.db.maintenance import run_prune

    try:
        report = asyncio.run(run_prune(settings, args.keep_days, dry_run=args.dry_run))
    except ValueError as exc:
        print(f"fraudsvc prune: {exc}", file=sys.stderr)
        return 2
    for line in report.lines():
        print(line)
    return 0


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio
    import os

    from fraudsvc.contract import load_contract_file
    from fraudsvc.replay import ReplayOptions, replay

    api_key = args.api_key or os.environ.get("FRAUDSVC_API_KEY")
    if not api_key:
        print("fraudsvc replay: give --api-key or set FRAUDSVC_API_KEY", file=sys.stderr)
        return 2
    frame = load_contract_file(args.file, require_labels=False).frame
    options = ReplayOptions(
        url=args.url,
        api_key=api_key,
        rate=args.rate,
        concurrency=args.concurrency,
        post_labels=not args.no_labels,
    )
    start = _midnight(args.start) if args.start else None
    end = _midnight(args.end) + timedelta(days=1) if args.end else None
    report = asyncio.run(replay(frame, options, start=start, end=end, limit=args.limit))
    print(report.summary())
    return 0 if not report.errors else 1


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fraudsvc",
        description=(
            "Real-time fraud detection: scoring API, LIME explanations, and the training "
            "pipeline behind them. Configuration comes from environment variables "
            "(see README: Configuration)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"fraudsvc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    gen = sub.add_parser(
        "generate",
        help="write synthetic transactions (data contract) to a CSV or Parquet file",
        description=(
            "Generate synthetic card transactions with six fraud scenarios (large amounts, "
            "compromised terminals, compromised cards, card-testing bursts, card-not-present "
            "fraud abroad on a new device, cash-out in high-risk merchant categories), "
            "heavy-tailed merchant sizes and the payment attributes of the data contract "
            "(currency, merchant category and country, card country, channel, device, IP, "
            "attributes). The same parameters and seed always give the same file."
        ),
    )
    gen.add_argument("--customers", type=_positive, default=2_000, help="customers (default 2000)")
    gen.add_argument("--terminals", type=_positive, default=4_000, help="terminals (default 4000)")
    gen.add_argument("--days", type=_positive, default=120, help="days to simulate (default 120)")
    gen.add_argument(
        "--start", type=_date, default=date(2026, 1, 1), help="first day (default 2026-01-01)"
    )
    gen.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    gen.add_argument(
        "--merchant-sizes",
        choices=("zipf", "uniform"),
        default="zipf",
        help="merchant popularity: zipf (heavy-tailed: a few merchants carry a large share of "
        "all payments, as in real traffic) or uniform (every merchant alike); default zipf",
    )
    gen.add_argument(
        "--fields",
        choices=("full", "basic"),
        default="full",
        help="full: the payment attributes too; basic: only the five contract fields, is_fraud "
        "and fraud_scenario, like the Handbook's data sets (the same payments); default full",
    )
    gen.add_argument("--out", type=Path, help="output file, .csv or .parquet (default: DATA_CSV)")
    gen.set_defaults(handler=cmd_generate)

    tr = sub.add_parser(
        "train",
        help="train, evaluate out of time, register in MLflow and promote if better",
        description=(
            "Compute features over the whole file, split it by time (fit | gap | validation | "
            "gap | test), train LightGBM with or without SMOTE, compare with a logistic-"
            "regression baseline, choose decision thresholds on validation data, log everything "
            "to MLflow, register the model when its test ROC AUC reaches MLFLOW_AUC_THRESHOLD, "
            "and move the champion alias to it only when it beats the current champion on the "
            "same test period."
        ),
    )
    tr.add_argument("--data", type=Path, help="training file (default: DATA_CSV)")
    tr.add_argument(
        "--from-db",
        action="store_true",
        help="train on the transactions and labels stored in DATABASE_URL (unlabelled ones "
        "count as genuine) instead of a file",
    )
    tr.add_argument(
        "--resampling",
        choices=("auto", "smote", "none"),
        default="auto",
        help="SMOTE on the fit rows, none, or auto: train both and keep the better on "
        "validation average precision (default auto)",
    )
    tr.add_argument("--train-start", type=_date, help="first day of the training period")
    tr.add_argument(
        "--train-end", type=_date, help="last day of the training period (fit + gap + validation)"
    )
    tr.add_argument("--test-start", type=_date, help="first day of the test period")
    tr.add_argument("--test-end", type=_date, help="last day of the test period")
    tr.add_argument(
        "--warmup-days",
        type=_non_negative,
        default=30,
        help="days kept as feature history only (default 30)",
    )
    tr.add_argument(
        "--valid-days",
        type=_positive,
        default=14,
        help="validation days at the end of training (default 14)",
    )
    tr.add_argument(
        "--test-days",
        type=_positive,
        default=14,
        help="test days at the end of the data (default 14)",
    )
    tr.add_argument(
        "--gap-days",
        type=_non_negative,
        default=7,
        help="gap before validation and test, the label delay (default 7)",
    )
    tr.add_argument(
        "--block-precision",
        type=float,
        default=0.9,
        help="validation precision that sets the block threshold (default 0.9)",
    )
    tr.add_argument(
        "--review-budget",
        type=float,
        default=0.01,
        help="share of transactions analysts can review (default 0.01)",
    )
    tr.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    tr.add_argument(
        "--max-rounds",
        type=_positive,
        default=1000,
        help="boosting rounds at most (early stopping picks fewer)",
    )
    tr.add_argument("--no-register", action="store_true", help="log the run but register nothing")
    tr.set_defaults(handler=cmd_train)

    ev = sub.add_parser(
        "evaluate",
        help="backtest a registered model on a contract file",
        description=(
            "Score a contract file offline through the batch features with a registered model "
            "(default: the serving alias), write per-row scores and decisions, and print the "
            "metrics for the chosen period."
        ),
    )
    ev.add_argument("file", type=Path, help="contract file with is_fraud (CSV or Parquet)")
    ev.add_argument(
        "--model", help="models:/<name>@<alias>, models:/<name>/<version> or a model folder"
    )
    ev.add_argument("--start", type=_date, help="first day to score (default: the file's first)")
    ev.add_argument("--end", type=_date, help="last day to score (default: the file's last)")
    ev.add_argument("--out", type=Path, help="per-row output, .csv or .parquet")
    ev.set_defaults(handler=cmd_evaluate)

    mg = sub.add_parser(
        "migrate",
        help="create the database if needed and apply the migrations",
        description=(
            "Create the database named in DATABASE_URL if it does not exist and apply every "
            "pending Piccolo migration from the migrations/ folder. Safe to run concurrently "
            "and repeatedly."
        ),
    )
    mg.set_defaults(handler=cmd_migrate)

    web = sub.add_parser(
        "web",
        help="serve the HTTP API (uvicorn)",
        description=(
            "Serve the scoring API, /healthz, /readyz and the docs at /docs under uvicorn, one "
            "process (scale with replicas). Needs FRAUDSVC_API_KEYS; serves the model at "
            "models:/MLFLOW_MODEL_NAME@MLFLOW_MODEL_ALIAS and follows the alias."
        ),
    )
    web.add_argument("--host", help="bind address (default FRAUDSVC_HOST, 127.0.0.1)")
    web.add_argument("--port", type=int, help="port (default FRAUDSVC_PORT, 8000)")
    web.add_argument(
        "--with-worker",
        action="store_true",
        help="run the explanation worker in the same process (small installs, the demo)",
    )
    web.set_defaults(handler=cmd_web)

    wk = sub.add_parser(
        "worker",
        help="run the explanation worker (arq on REDIS_URL)",
        description=(
            "Run the arq worker that computes LIME explanations (in a process pool) and sweeps "
            "up explanations left without a job. Serves /healthz, /readyz and /metrics on "
            "FRAUDSVC_WORKER_METRICS_HOST:FRAUDSVC_WORKER_METRICS_PORT."
        ),
    )
    wk.add_argument(
        "--check",
        action="store_true",
        help="exit 0 when a worker heartbeat is fresh in Redis, 1 otherwise (for probes)",
    )
    wk.set_defaults(handler=cmd_worker)

    pr = sub.add_parser(
        "prune",
        help="drop the monthly partitions of history older than --keep-days",
        description=(
            "Drop whole months of transactions and predictions (with their labels, "
            "explanations and closed review cases) older than --keep-days of transaction time. "
            "A month that a pending explanation, an open review case or a label given within "
            "those days still needs is kept, and the output says why; --keep-days shorter than "
            "the longest window plus its delay is refused. Transaction ids stay known: a "
            "replay of a pruned id gets a 409. The worker does the same daily when "
            "FRAUDSVC_RETENTION_DAYS is set."
        ),
    )
    pr.add_argument("--keep-days", type=int, required=True, help="days of history to keep")
    pr.add_argument(
        "--dry-run", action="store_true", help="say what would be dropped, change nothing"
    )
    pr.set_defaults(handler=cmd_prune)

    bf = sub.add_parser(
        "backfill",
        help="import past transactions and known labels as history, without scoring",
        description=(
            "Bulk-import a contract file into the database as history for the online features "
            "(no predictions are made). With --until, only transactions before that day are "
            "imported, and only the fraud labels that would be known by then (at least the "
            "label delay old). Reruns add only what is missing."
        ),
    )
    bf.add_argument("file", type=Path, help="contract file (CSV or Parquet)")
    bf.add_argument("--until", type=_date, help="import transactions before this day only")
    bf.set_defaults(handler=cmd_backfill)

    rp = sub.add_parser(
        "replay",
        help="stream a file to a running service in time order, posting labels as they fall due",
        description=(
            "An HTTP client: sends the file's transactions to POST /v1/transactions in time "
            "order (never two of one customer at once), posts each fraud label once the label "
            "delay has passed in the file's own time, and prints throughput, latency "
            "percentiles, the decision mix and the online ROC AUC / average precision."
        ),
    )
    rp.add_argument("file", type=Path, help="contract file (CSV or Parquet)")
    rp.add_argument(
        "--url", default="http://127.0.0.1:8000", help="service URL (default http://127.0.0.1:8000)"
    )
    rp.add_argument("--api-key", help="API key (default: FRAUDSVC_API_KEY)")
    rp.add_argument("--rate", type=float, help="requests per second (default: as fast as answered)")
    rp.add_argument(
        "--concurrency", type=_positive, default=8, help="requests in flight (default 8)"
    )
    rp.add_argument("--limit", type=_positive, help="send only the first N transactions")
    rp.add_argument(
        "--start",
        type=_date,
        help="first day to send; earlier rows count as backfilled and their fraud labels "
        "are posted when they fall due",
    )
    rp.add_argument("--end", type=_date, help="last day to send")
    rp.add_argument("--no-labels", action="store_true", help="do not post fraud labels")
    rp.set_defaults(handler=cmd_replay)

    from fraudsvc.cli_analysts import register as register_analysts
    from fraudsvc.cli_rules import register

    register(sub)
    register_analysts(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"fraudsvc: {exc}", file=sys.stderr)
        return 2
    from fraudsvc.telemetry.logs import setup_logging

    fmt: Literal["json", "text"]
    if settings.telemetry.log_format == "auto":
        fmt = "json" if args.command in SERVICE_ROLES else "text"
    else:
        fmt = settings.telemetry.log_format
    setup_logging(settings.telemetry.log_level, fmt)
    handler: Handler = args.handler
    try:
        return handler(args, settings)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a clear one-line reason for the known failures
        from fraudsvc.contract import ContractError
        from fraudsvc.db.engine import DatabaseUnavailable
        from fraudsvc.model.bundle import ModelRefused
        from fraudsvc.model.registry import RegistryUnavailable
        from fraudsvc.rules.ruleset import RulesetRefused
        from fraudsvc.training.pipeline import TrainingError
        from fraudsvc.training.split import SplitError

        known = (
            ContractError,
            DatabaseUnavailable,
            RulesetRefused,
            LookupError,
            ModelRefused,
            RegistryUnavailable,
            TrainingError,
            SplitError,
            FileNotFoundError,
            ValueError,
            OSError,  # a database or server that does not answer
        )
        if isinstance(exc, known):
            print(f"fraudsvc {args.command}: {exc}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
