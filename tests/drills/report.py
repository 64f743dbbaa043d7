"""What the drills found: one line per drill while they run, and data/reports/drills.{json,md}."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from fraudsvc.settings import Settings
from tests.drills.drill import FAULT_AT, RATE, DrillResult


def keep_logs(workdir: Path) -> Path:
    """The services' logs outlive the temporary folder: the evidence of a failed drill."""
    logs = Settings.from_env().paths.reports_dir / "drills-logs"
    logs.mkdir(parents=True, exist_ok=True)
    for log in workdir.glob("*.log"):
        shutil.copy(log, logs / log.name)
    return logs


def line(r: DrillResult) -> str:
    verdict = "PASS" if r.passed else "FAIL: " + "; ".join(r.problems)
    return (
        f"  {r.name:<17} sent {r.sent:>5}  ok {r.succeeded:>5}  503 {r.refused_503:>4}  "
        f"explanations {r.explanations_done}/{r.explanations_expected} done, "
        f"{r.explanations_rerun} re-run, {r.duplicates} duplicate  "
        f"half-written {r.half_written}  recovered {'yes' if r.recovered else 'NO'}  "
        f"({r.seconds:.0f} s)  {verdict}"
    )


def write_report(results: list[DrillResult], directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "drills.json").write_text(
        json.dumps([asdict(r) | {"passed": r.passed} for r in results], indent=2)
    )
    lines = [
        "# fraudsvc fault drills",
        "",
        f"Run {datetime.now(UTC).isoformat(timespec='seconds')}: {RATE:.0f} requests/s, "
        f"fault {FAULT_AT:.0f} s into each load, every transaction explained.",
        "",
        "| drill | sent | succeeded | 503 | explanations done / expected | re-run | "
        "duplicates | half-written | recovered | verdict |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.name} | {r.sent} | {r.succeeded} | {r.refused_503} | "
            f"{r.explanations_done} / {r.explanations_expected} | {r.explanations_rerun} | "
            f"{r.duplicates} | {r.half_written} | {'yes' if r.recovered else 'no'} | "
            f"{'pass' if r.passed else '; '.join(r.problems)} |"
        )
    path = directory / "drills.md"
    path.write_text("\n".join(lines) + "\n")
    return path
