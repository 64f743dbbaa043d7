"""`python -m tests.drills [--only DRILL ...]`: run the fault drills (see the package's
docstring) and write data/reports/drills.{json,md}."""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

import polars as pl

import tests.drills
from fraudsvc.settings import Settings
from fraudsvc.telemetry.logs import setup_logging
from tests.drills.drill import RATE, SLICE, DrillResult, expect, run_drill
from tests.drills.report import keep_logs, line, write_report
from tests.drills.stack import LIVE_FROM, prepare, private_servers


async def run(selected: list[str]) -> list[DrillResult]:
    results: list[DrillResult] = []
    with (
        tempfile.TemporaryDirectory(prefix="fraudsvc-drills-") as tmp,
        private_servers("fraudsvc-drill-servers-") as (postgres, redis),
    ):
        stack, frame = await prepare(Path(tmp), postgres, redis)
        live = frame.filter(pl.col("timestamp") >= LIVE_FROM)
        slices = iter(live.iter_slices(SLICE + 40))  # the 40 after a slice probe recovery
        try:

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

            drills = {
                "redis-restart": (restart_redis, False),
                "worker-kill": (kill_worker, False),
                "postgres-restart": (restart_postgres, True),
            }
            for name in selected:
                fault, allow_503 = drills[name]
                rows = next(slices).head(SLICE)
                print(f"drill {name}: {rows.height} transactions at {RATE:.0f}/s ...", flush=True)
                result = expect(
                    await run_drill(stack, name, rows, frame, fault), allow_503=allow_503
                )
                print(line(result), flush=True)
                results.append(result)
        finally:
            stack.web.stop()
            stack.worker.stop()
            kept = await asyncio.to_thread(keep_logs, Path(tmp))
            print(f"service logs kept in {kept}", flush=True)
    return results


def main() -> int:
    names = ["redis-restart", "worker-kill", "postgres-restart"]
    parser = argparse.ArgumentParser(
        prog="python -m tests.drills",
        description=tests.drills.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--only", nargs="*", choices=names, help="run only these drills")
    args = parser.parse_args()
    setup_logging("WARNING", "text")
    results = asyncio.run(run(args.only or names))
    report = write_report(results, Settings.from_env().paths.reports_dir)
    print(f"\n{report.read_text()}\nwritten to {report}")
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
