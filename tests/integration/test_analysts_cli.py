"""`fraudsvc analysts`: accounts of the review pages, the password read from stdin (never
printed), short passwords refused, an account disabled rather than deleted."""

from __future__ import annotations

import asyncio
import io
import os
import re
from pathlib import Path

import asyncpg
import pytest

from fraudsvc.cli import main
from fraudsvc.demo import DEMO_ANALYST, _analyst
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


def test_a_new_password_ends_the_old_one_and_the_demo_makes_its_analyst_with_the_cli(
    monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("FRAUDSVC_DATA_DIR", str(tmp_path))
    monkeypatch.setattr("sys.stdin", io.StringIO("tiny\n"))
    assert main(["analysts", "password", "nobody-here"]) == 2
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["analysts", "password", "nobody-here"]) == 1

    env = {**os.environ, "DATABASE_URL": database_url, "FRAUDSVC_DATA_DIR": str(tmp_path)}
    first = _analyst(env)  # made
    second = _analyst(env)  # made already: a new password
    assert first != second
    stored = asyncio.run(_hash_of(database_url, DEMO_ANALYST))
    assert stored.startswith("$argon2id$")
    assert first not in stored
    assert second not in stored


async def _hash_of(database_url: str, name: str) -> str:
    connection = await asyncpg.connect(database_url)
    try:
        value: str = await connection.fetchval(
            "SELECT password_hash FROM analysts WHERE name = $1", name
        )
        return value
    finally:
        await connection.close()
