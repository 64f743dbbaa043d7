"""`python -m fraudsvc.bench [--repeat N] [--only SECTION ...]`: run and report the benchmarks."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from fraudsvc.bench import offline
from fraudsvc.bench.report import Report
from fraudsvc.settings import Settings
from fraudsvc.telemetry.logs import setup_logging

SECTIONS = ("offline",)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m fraudsvc.bench", description=__doc__)
    parser.add_argument("--repeat", type=int, default=3, help="runs per measure (default 3)")
    parser.add_argument("--only", nargs="*", choices=SECTIONS, help="run only these sections")
    args = parser.parse_args()
    settings = Settings.from_env()
    setup_logging("WARNING", "text")
    report = Report()
    chosen = args.only or SECTIONS
    with tempfile.TemporaryDirectory(
        dir=settings.paths.data_dir if settings.paths.data_dir.is_dir() else None
    ) as tmp:
        work = Path(tmp)
        if "offline" in chosen:
            print("offline: generator, features, training", flush=True)
            offline.run(report, settings, args.repeat, work)
    json_path, md_path = report.write(settings.paths.reports_dir)
    print(f"\nwrote {json_path} and {md_path}")
    print(md_path.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
