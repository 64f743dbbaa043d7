"""promtool (from the Debian package `prometheus`), or a skip that names the package."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

INSTALL_HINT = "install the Debian package `prometheus` (apt-get install prometheus)"


def promtool() -> str:
    path = shutil.which("promtool", path="/usr/bin") or shutil.which("promtool")
    if path is None:
        pytest.skip(f"promtool is missing: {INSTALL_HINT}")
    return path


def run_promtool(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *(str(a) for a in args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
