"""`python -m tests.bench [--repeat N] [--only SECTION ...] [--quick]`: run the benchmarks and
write data/reports/bench.{json,md}.

Sections: offline (generator, batch features in polars and pandas, training), lime (LIME's
settings by fidelity, stability and cost), http (fraudsvc web under wrk), mlflow-serve (the
same model behind `mlflow models serve`, side by side), volume (a terminal with a million
transactions in its window against a quiet one, and one hot merchant at 300 requests/s), rules
(100 live rules and three lists of 100,000 entries against none),
explain (the worker's throughput and latency), memory (peak resident memory), storage (bytes
per row). The services they need (a PostgreSQL database with 1M transactions of history, Redis,
a model in a temporary MLflow store) are set up on the machine's PostgreSQL and Redis
(FRAUDSVC_BENCH_POSTGRES, default postgresql://postgres@127.0.0.1:5432, and
FRAUDSVC_BENCH_REDIS, default redis://127.0.0.1:6379/0), and removed at the end, even on
failure. The HTTP sections need wrk (Debian: apt-get install wrk).
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from fraudsvc.settings import Settings
from fraudsvc.telemetry.logs import setup_logging
from tests.bench import (
    comparison,
    explanations,
    lime_settings,
    memory,
    offline,
    rules_cost,
    storage,
    volume,
)
from tests.bench.environment import Bench
from tests.bench.plan import SECTIONS, STACK_SECTIONS, make_plan
from tests.bench.report import ERRORS, Report


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--repeat", type=_positive, help="runs per measure (default 3; 1 with --quick)"
    )
    parser.add_argument("--only", nargs="+", choices=SECTIONS, help="run only these sections")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run of a few minutes: 214k rows, short loads, few LIME vectors",
    )
    return parser


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the cleanup of every resource


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    plan = make_plan(args.quick, args.repeat)
    chosen = [s for s in SECTIONS if s in (args.only or SECTIONS)]
    settings = Settings.from_env()
    setup_logging("WARNING", "text")
    signal.signal(signal.SIGTERM, _terminate)
    report = Report()
    report.data["plan"] = {"label": plan.label, "repeat": plan.repeat, "sections": chosen}
    started = time.perf_counter()
    print(f"fraudsvc bench: {plan.label}, {plan.repeat} run(s) per measure: {', '.join(chosen)}")
    failed = False
    parent = settings.paths.data_dir if settings.paths.data_dir.is_dir() else None
    with tempfile.TemporaryDirectory(prefix="fraudsvc-bench-", dir=parent) as tmp:
        bench = Bench(plan, Path(tmp), report)
        steps: list[tuple[str, str, Callable[[], object]]] = []
        with_http, with_mlflow = "http" in chosen, "mlflow-serve" in chosen
        if "offline" in chosen:
            steps.append(
                (
                    "offline",
                    "generator, batch features (polars, pandas), training",
                    lambda: offline.run(report, plan, bench.workdir),
                )
            )
        if with_http or with_mlflow:
            steps.append(
                (
                    "http / mlflow-serve",
                    "wrk against the servers",
                    lambda: comparison.run(bench, report, with_http, with_mlflow),
                )
            )
        if "volume" in chosen:
            steps.append(
                (
                    "volume",
                    "a terminal with a million transactions, one hot merchant",
                    lambda: volume.run(bench, report),
                )
            )
        if "rules" in chosen:
            steps.append(
                (
                    "rules",
                    "100 live rules and three lists of 100,000 entries",
                    lambda: rules_cost.run(bench, report),
                )
            )
        if "explain" in chosen:
            steps.append(("explain", "the worker", lambda: explanations.run(bench, report)))
        if "memory" in chosen:
            loaded = bool(STACK_SECTIONS & set(chosen) - {"memory", "storage"})
            steps.append(
                ("memory", "peak resident memory", lambda: memory.run(bench, report, loaded))
            )
        if "storage" in chosen:
            steps.append(
                ("storage", "bytes per row and per job", lambda: storage.run(bench, report))
            )
        if "explain" in chosen:
            steps.append(("explain", "what-if", lambda: explanations.what_if(bench, report)))
        if "lime" in chosen:
            steps.append(
                (
                    "lime",
                    "LIME's settings: fidelity, stability, cost",
                    lambda: lime_settings.run(bench, report),
                )
            )
        try:
            for name, title, step in steps:
                print(f"\n{name}: {title}", flush=True)
                try:
                    step()
                except (KeyboardInterrupt, SystemExit):
                    raise
                except Exception as exc:  # the other sections still run and report
                    failed = True
                    report.note(ERRORS, f"{name} ({title}) failed: {type(exc).__name__}: {exc}")
                    traceback.print_exc()
        except (KeyboardInterrupt, SystemExit) as exc:
            failed = True
            report.note(ERRORS, f"The run was stopped: {type(exc).__name__} {exc}")
        finally:
            print("\ncleaning up: services, database, Redis keys ...", flush=True)
            bench.close()
    report.data["seconds"] = time.perf_counter() - started
    json_path, md_path = report.write(settings.paths.reports_dir)
    print(f"\nwrote {json_path} and {md_path} ({report.data['seconds'] / 60:.1f} min)\n")
    print(md_path.read_text())
    for v in report.gate_missed:
        print(f"bench check failed: {v.target}: {v.measured}", file=sys.stderr)
    return 1 if failed or report.gate_missed else 0


if __name__ == "__main__":
    sys.exit(main())
