"""Importing the database layer connects to nothing: the engine is configured later, from
DATABASE_URL, so a machine with no PostgreSQL on libpq's default address imports it cleanly
(make test's conftest imports it before it starts an embedded server)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys


def test_importing_the_engine_neither_connects_nor_warns() -> None:
    with socket.socket() as s:  # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = os.environ | {"PGHOST": "127.0.0.1", "PGPORT": str(port)}
    env.pop("DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", "import fraudsvc.db.engine, fraudsvc.db.admin"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
