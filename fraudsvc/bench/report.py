"""Collects benchmark figures and writes them as JSON and Markdown with the machine's facts."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
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
        "versions": {p: _version(p) for p in PACKAGES},
    }


def _version(package: str) -> str:
    try:
        return version(package)
    except Exception:
        return "?"


@dataclass
class Figure:
    name: str
    unit: str
    runs: list[float]
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.runs)


@dataclass
class Report:
    started: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    sections: dict[str, list[Figure]] = field(default_factory=dict)
    tables: dict[str, list[str]] = field(default_factory=dict)

    def add(self, section: str, figure: Figure) -> Figure:
        self.sections.setdefault(section, []).append(figure)
        print(
            f"  {figure.name}: {figure.median:,.3f} {figure.unit}  (runs: "
            + ", ".join(f"{r:,.3f}" for r in figure.runs)
            + ")",
            flush=True,
        )
        return figure

    def write(self, out_dir: Path) -> tuple[Path, Path]:
        out_dir.mkdir(parents=True, exist_ok=True)
        facts = machine()
        data = {
            "started": self.started,
            "machine": facts,
            "sections": {
                s: [
                    {
                        "name": f.name,
                        "unit": f.unit,
                        "median": f.median,
                        "runs": f.runs,
                        "note": f.note,
                    }
                    for f in figs
                ]
                for s, figs in self.sections.items()
            },
            "tables": self.tables,
        }
        json_path = out_dir / "bench.json"
        json_path.write_text(json.dumps(data, indent=2))
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
        for section, figs in self.sections.items():
            lines += [
                f"## {section}",
                "",
                "| measure | median | unit | runs | note |",
                "|---|---:|---|---|---|",
            ]
            for f in figs:
                runs = ", ".join(f"{r:,.3f}" for r in f.runs)
                lines.append(f"| {f.name} | {f.median:,.3f} | {f.unit} | {runs} | {f.note} |")
            lines.append("")
        for title, rows in self.tables.items():
            lines += [f"## {title}", "", *rows, ""]
        md_path = out_dir / "bench.md"
        md_path.write_text("\n".join(lines))
        return json_path, md_path


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    """Wall-clock seconds of `repeat` calls."""
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - started)
    return runs
