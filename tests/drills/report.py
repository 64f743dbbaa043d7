"""What the drills found: one line per drill while they run, and data/reports/drills.{json,md}."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from fraudsvc.settings import Settings
from tests.drills.drill import FAULT_AT, LOAD_SECONDS, DrillResult


def keep_logs(*workdirs: Path) -> Path:
    """The services' logs (and PostgreSQL's) outlive the temporary folders: the evidence of a
    failed drill."""
    logs = Settings.from_env().paths.reports_dir / "drills-logs"
    logs.mkdir(parents=True, exist_ok=True)
    for workdir in workdirs:
        for log in workdir.glob("*.log"):
            shutil.copy(log, logs / log.name)
    return logs


def line(r: DrillResult) -> str:
    verdict = "PASS" if r.passed else "FAIL: " + "; ".join(r.problems)
    return "\n".join(
        [
            f"  {r.name}: {verdict}",
            f"    sent {r.sent} at {r.rate:.0f}/s (at most {r.late_ms:.0f} ms behind schedule)"
            f"  2xx {r.succeeded}  503 {r.refused_503} (slowest {r.slowest_503_ms:.0f} ms, "
            f"{r.refused_before_fault} before the fault, {r.silent_503} without message)  "
            f"no answer {r.unanswered}  other {r.other_failures or 0}"
            + (
                f"  slowest answer sent during the fault {r.slowest_in_fault_ms:.0f} ms"
                if r.slowest_in_fault_ms
                else ""
            ),
            f"    stored {r.stored} (2xx not stored {r.lost}, twice {r.stored_twice}, "
            f"stored without a 2xx {r.stored_unanswered})  half-written {r.half_written}",
            f"    explanations {r.explanations_done}/{r.explanations_expected} done, "
            f"{r.explanations_open} open, {r.explanations_failed} failed, "
            f"{r.explanations_rerun} re-run, {r.duplicates} duplicate, "
            f"{r.owed_unrecorded} owed but unrecorded  recovered {'yes' if r.recovered else 'NO'}"
            f"  ({r.seconds:.0f} s)",
        ]
    )


def write_report(results: list[DrillResult], directory: Path, rate: float) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "drills.json").write_text(
        json.dumps([asdict(r) | {"passed": r.passed} for r in results], indent=2)
    )
    lines = [
        "# fraudsvc fault drills",
        "",
        f"Run {datetime.now(UTC).isoformat(timespec='seconds')}: transactions sent open loop at "
        f"{rate:.0f} requests/s for {LOAD_SECONDS:.0f} s per drill (web-kill 30 s), fault "
        f"{FAULT_AT:.0f} s into each load, flagged transactions explained.",
        "",
        "| drill | sent | rate | 2xx | 503 | 503 before the fault | slowest 503 "
        "| slowest answer sent during the fault | no answer | stored | 2xx not stored "
        "| stored twice | stored without 2xx | half-written | explanations done / expected "
        "| re-run | duplicates | recovered | verdict |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.name} | {r.sent} | {r.rate:.0f}/s | {r.succeeded} | {r.refused_503} | "
            f"{r.refused_before_fault} | {r.slowest_503_ms:.0f} ms | "
            f"{f'{r.slowest_in_fault_ms:.0f} ms' if r.slowest_in_fault_ms else '-'} | "
            f"{r.unanswered} | {r.stored} | {r.lost} | "
            f"{r.stored_twice} | {r.stored_unanswered} | {r.half_written} | "
            f"{r.explanations_done} / {r.explanations_expected} | {r.explanations_rerun} | "
            f"{r.duplicates} | {'yes' if r.recovered else 'no'} | "
            f"{'pass' if r.passed else '; '.join(r.problems)} |"
        )
    path = directory / "drills.md"
    path.write_text("\n".join(lines) + "\n")
    return path
