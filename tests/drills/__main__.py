"""`python -m tests.drills [--only DRILL ...]`: run the fault drills (see the package's
docstring) and write data/reports/drills.{json,md}."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import tempfile
from pathlib import Path

import polars as pl

import tests.drills
from fraudsvc.processes import wait_http
from fraudsvc.settings import Settings
from fraudsvc.telemetry.logs import setup_logging
from tests.drills.drill import PROBE, RATE, Drill, DrillResult, expect, run_drill
from tests.drills.freeze import freeze, thaw
from tests.drills.load import Load, open_loop
from tests.drills.report import keep_logs, line, write_report
from tests.drills.stack import API_KEY, LIVE_FROM, Stack, prepare, private_servers

HANG_SECONDS = 4.0
WARM_UP_SECONDS = 5.0  # of load before the first drill: pools grown, plans cached
NAMES = ["redis-restart", "worker-kill", "postgres-restart", "web-kill", "postgres-hang"]


def drills(stack: Stack) -> dict[str, Drill]:
    postgres, redis = stack.postgres, stack.redis
    db_timeout = float(stack.env["FRAUDSVC_DB_TIMEOUT_SECONDS"])

    async def restart_redis() -> None:
        redis.stop()
        await asyncio.sleep(4)
        redis.start()

    async def kill_worker() -> None:
        stack.worker.kill()
        await asyncio.sleep(2)
        stack.start_worker()

    async def restart_postgres() -> None:
        await asyncio.to_thread(postgres.stop, "fast")
        await asyncio.sleep(3)
        await asyncio.to_thread(postgres.start)

    async def kill_web() -> None:
        stack.web.kill()
        await asyncio.sleep(1)
        stack.start_web()
        await asyncio.to_thread(wait_http, f"{stack.url}/readyz", 90)

    async def hang_postgres() -> None:
        frozen = freeze(postgres)
        try:
            await asyncio.sleep(HANG_SECONDS)
        finally:
            thaw(frozen)

    return {
        d.name: d
        for d in (
            Drill("redis-restart", restart_redis),
            Drill("worker-kill", kill_worker),
            Drill("postgres-restart", restart_postgres, allow_503=True),
            # a restarted web process imports for about 10 s here (mlflow, lightgbm): the load
            # goes on long enough to be served again by the new process
            Drill("web-kill", kill_web, allow_503=True, allow_unanswered=True, load_seconds=30.0),
            Drill(
                "postgres-hang",
                hang_postgres,
                allow_503=True,
                hang_timeout=db_timeout,
                fault_seconds=HANG_SECONDS,
            ),
        )
    }


def keeping_up(load: Load) -> str:
    """How the service did under the warm-up load, before any fault: a machine too busy for the
    rate shows here, not as a drill's fault."""
    ok = load.with_status(200, 300)
    latencies = sorted(o.seconds for o in ok) or [0.0]
    p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]
    verdict = (
        "kept up"
        if len(ok) == len(load.outcomes)
        else "DID NOT keep up (the machine is too busy for this rate: expect 503s before faults)"
    )
    return (
        f"  {len(ok)} of {len(load.outcomes)} answered 2xx, p50 {p50 * 1000:.0f} ms, "
        f"p99 {p99 * 1000:.0f} ms: {verdict}"
    )


async def run(selected: list[str], rate: float) -> list[DrillResult]:
    results: list[DrillResult] = []
    with (
        tempfile.TemporaryDirectory(prefix="fraudsvc-drills-") as tmp,
        private_servers("fraudsvc-drill-servers-") as (postgres, redis),
    ):
        stack, frame = await prepare(Path(tmp), postgres, redis)
        live = frame.filter(pl.col("timestamp") >= LIVE_FROM)
        offset = round(WARM_UP_SECONDS * rate)
        try:
            known = drills(stack)
            print(f"warming up: {offset} transactions at {rate:.0f}/s ...", flush=True)
            warm = await open_loop(stack.url, API_KEY, live.head(offset), rate)
            print(keeping_up(warm), flush=True)
            for name in selected:
                drill = known[name]
                n = drill.transactions(rate)
                rows = live.slice(offset, n + PROBE)
                offset += n + PROBE
                if rows.height < n + PROBE:
                    raise RuntimeError(f"the live data ran out at drill {name}")
                print(f"drill {name}: {n} transactions at {rate:.0f}/s ...", flush=True)
                result = await run_drill(stack, drill, rows.head(n), rows.tail(PROBE), rate)
                print(line(expect(result, drill)), flush=True)
                results.append(result)
        finally:
            stack.web.stop()
            stack.worker.stop()
            kept = await asyncio.to_thread(keep_logs, Path(tmp), postgres.workdir)
            print(f"service logs kept in {kept}", flush=True)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.drills",
        description=tests.drills.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--only", nargs="*", choices=NAMES, help="run only these drills")
    parser.add_argument(
        "--rate", type=float, default=RATE, help=f"requests per second (default {RATE:.0f})"
    )
    args = parser.parse_args()
    setup_logging("WARNING", "text")
    # a SIGTERM (timeout, CI cancel) unwinds like Ctrl-C: thaw PostgreSQL, stop every server
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    results = asyncio.run(run(args.only or NAMES, args.rate))
    report = write_report(results, Settings.from_env().paths.reports_dir, args.rate)
    print(f"\n{report.read_text()}\nwritten to {report}")
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
