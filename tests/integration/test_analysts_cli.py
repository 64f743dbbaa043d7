"""`fraudsvc analysts`: accounts of the review pages, the password read from stdin (never
printed), short passwords refused, an account disabled rather than deleted."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from fraudsvc.cli import main
from tests.review_support import PASSWORD


def test_the_analysts_command_reads_the_password_from_stdin_and_refuses_short_ones(
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("FRAUDSVC_DATA_DIR", str(tmp_path))
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["analysts", "add", "cli-alice"]) == 2
    assert "at least 12 characters" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["analysts", "add", "cli-alice"]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["analysts", "add", "cli-alice"]) == 1
    assert main(["analysts", "list"]) == 0
    listed = capsys.readouterr()
    assert PASSWORD not in listed.out + listed.err
    assert re.search(r"cli-alice\s+active", listed.out)
    assert main(["analysts", "disable", "cli-alice"]) == 0
    assert main(["analysts", "list"]) == 0
    assert re.search(r"cli-alice\s+disabled", capsys.readouterr().out)
