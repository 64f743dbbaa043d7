"""Collects benchmark figures and writes them as JSON and Markdown with the machine's facts.

A report is a list of sections; each holds figures (a measure with the value of every run and
their median), tables (already summarised rows) and notes (how something was measured, what it
means). Verdicts compare a figure with a target and are listed at the top of the Markdown.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

PACKAGES = (
    "litestar",
    "uvicorn",
    "asyncpg",
    "piccolo",
    "arq",
    "lightgbm",
    "lime",
    "mlflow",
    "polars",
    "pandas",
    "numpy",
    "imbalanced-learn",
    "aioprometheus",
)


def machine() -> dict[str, Any]:
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        cpu = platform.processor()
    try:
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        mem_kb = 0
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 2**20, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "commit": commit,
        "versions": {p: _version(p) for p in PACKAGES} | _tool_versions(),
    }


def _version(package: str) -> str:
    try:
        return version(package)
    except Exception:
        return "?"


def _tool_versions() -> dict[str, str]:
    """Versions of the servers and tools the benchmark talks to (best effort)."""
    probes = {
        "wrk": (["wrk", "--version"], 0),
        "postgresql client": (["psql", "--version"], 2),
        "redis": (["redis-server", "--version"], 2),
    }
    found: dict[str, str] = {}
    for name, (argv, word) in probes.items():
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired):
            continue
        text = (done.stdout or done.stderr).strip().splitlines()
        if text:
            parts = text[0].split()
            if name == "wrk" and len(parts) > 1:
                found[name] = parts[1]
            elif len(parts) > abs(word):
                found[name] = parts[word].removeprefix("v=")
    return found


ERRORS = "errors"


@dataclass
class Figure:
    name: str
    unit: str
    runs: list[float]
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.runs) if self.runs else float("nan")


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list[str]]
    note: str = ""


@dataclass
class Verdict:
    target: str
    measured: str
    ok: bool
    gate: bool = False
    """A miss fails the run (exit status 1), not only the report."""


@dataclass
class Section:
    title: str
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class Report:
    started: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    sections: dict[str, Section] = field(default_factory=dict)
    verdicts: list[Verdict] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    """Raw measurements for bench.json (every wrk run, every LIME setting...)."""

    def section(self, title: str) -> Section:
        return self.sections.setdefault(title, Section(title))

    def add(self, section: str, figure: Figure) -> Figure:
        self.section(section).figures.append(figure)
        print(
            f"  {figure.name}: {figure.median:,.3f} {figure.unit}  (runs: "
            + ", ".join(f"{r:,.3f}" for r in figure.runs)
            + ")",
            flush=True,
        )
        return figure

    def table(
        self,
        section: str,
        title: str,
        header: Sequence[str],
        rows: Sequence[Sequence[str]],
        note: str = "",
    ) -> Table:
        table = Table(title, list(header), [list(r) for r in rows], note)
        self.section(section).tables.append(table)
        return table

    def note(self, section: str, text: str) -> None:
        self.section(section).notes.append(text)

    def verdict(self, target: str, measured: str, ok: bool, gate: bool = False) -> None:
        self.verdicts.append(Verdict(target, measured, ok, gate))
        print(f"  [{'met' if ok else 'MISSED'}] {target}: {measured}", flush=True)

    @property
    def gate_missed(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.gate and not v.ok]

    def to_json(self, facts: dict[str, Any]) -> dict[str, Any]:
        return {
            "started": self.started,
            "machine": facts,
            "verdicts": [asdict(v) for v in self.verdicts],
            "sections": {
                title: {
                    "figures": [
                        {
                            "name": f.name,
                            "unit": f.unit,
                            "median": f.median,
                            "runs": f.runs,
                            "note": f.note,
                        }
                        for f in s.figures
                    ],
                    "tables": [asdict(t) for t in s.tables],
                    "notes": s.notes,
                }
                for title, s in self.sections.items()
            },
            "data": self.data,
        }

    def markdown(self, facts: dict[str, Any]) -> str:
        lines = [
            "# fraudsvc benchmark",
            "",
            f"Run {self.started} on {facts['cpu']} ({facts['cores']} cores, "
            f"{facts['memory_gib']} GiB), Python {facts['python']}, commit {facts['commit']}.",
            "Figures are medians of the runs listed; the machine is shared, so compare rows of "
            "the same run.",
            "",
            "Versions: " + ", ".join(f"{k} {v}" for k, v in facts["versions"].items()),
            "",
        ]
        if self.verdicts:
            lines += ["## Targets", "", "| target | measured | |", "|---|---|---|"]
            lines += [
                f"| {v.target} | {v.measured} | {'met' if v.ok else '**missed**'} |"
                for v in self.verdicts
            ]
            lines.append("")
        # a section that failed is said first
        ordered = sorted(self.sections.values(), key=lambda s: s.title != ERRORS)
        for section in ordered:
            lines += [f"## {section.title}", ""]
            if section.figures:
                lines += ["| measure | median | unit | runs | note |", "|---|---:|---|---|---|"]
                for f in section.figures:
                    runs = ", ".join(_number(r) for r in f.runs)
                    lines.append(
                        f"| {f.name} | {_number(f.median)} | {f.unit} | {runs} | {f.note} |"
                    )
                lines.append("")
            for t in section.tables:
                lines += [f"### {t.title}", ""]
                lines.append("| " + " | ".join(t.header) + " |")
                lines.append("|" + "|".join("---" for _ in t.header) + "|")
                lines += ["| " + " | ".join(row) + " |" for row in t.rows]
                lines.append("")
                if t.note:
                    lines += [t.note, ""]
            for text in section.notes:
                lines += [text, ""]
        return "\n".join(lines)

    def write(self, out_dir: Path) -> tuple[Path, Path]:
        out_dir.mkdir(parents=True, exist_ok=True)
        facts = machine()
        json_path = out_dir / "bench.json"
        json_path.write_text(json.dumps(self.to_json(facts), indent=2, default=str))
        md_path = out_dir / "bench.md"
        md_path.write_text(self.markdown(facts))
        return json_path, md_path


def _number(value: float) -> str:
    """Three significant decimals for small values, thousands separators for large ones."""
    if value != value:  # NaN
        return "n/a"
    if abs(value) >= 100:
        return f"{value:,.0f}" if abs(value) >= 10_000 else f"{value:,.1f}"
    return f"{value:,.3f}"


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    """Wall-clock seconds of `repeat` calls."""
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - started)
    return runs
