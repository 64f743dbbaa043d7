"""Real processes for the benchmark and the fault drills: fraudsvc web and worker as
subprocesses, and private PostgreSQL and Redis servers that a drill may stop and restart
without touching the machine's own.

Everything listens on 127.0.0.1 only. Each service runs in its own process group, so a stop or
a SIGKILL also reaches its children (the worker's LIME processes).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

PG_BIN_ROOT = Path("/usr/lib/postgresql")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, seconds: float = 60.0, want: int = 200) -> None:
    deadline = time.monotonic() + seconds
    last = ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == want:
                    return
                last = f"status {response.status}"
        except urllib.error.HTTPError as exc:
            last = f"status {exc.code}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer {want} within {seconds:.0f} s ({last})")


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(c) for c in text.split()]


def peak_rss_mib(pid: int) -> float:
    """VmHWM (peak resident memory) of a process, in MiB; 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


@dataclass
class Service:
    """A fraudsvc role (or any command) in its own process group, logging to a file."""

    name: str
    argv: Sequence[str]
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> Service:
        handle = self.log.open("ab")
        self.process = subprocess.Popen(
            list(self.argv),
            env=self.env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        handle.close()
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def memory(self) -> dict[str, float]:
        """Peak resident memory of the process and of each child it has now (MiB)."""
        if not self.alive():
            return {}
        out = {self.name: peak_rss_mib(self.pid)}
        for i, child in enumerate(_children(self.pid)):
            out[f"{self.name} child {i + 1}"] = peak_rss_mib(child)
        return out

    def signal(self, sig: int) -> None:
        if self.alive():
            os.killpg(self.pid, sig)

    def stop(self, seconds: float = 30.0) -> None:
        if not self.alive():
            return
        assert self.process is not None
        self.signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def kill(self) -> None:
        assert self.process is not None
        self.signal(signal.SIGKILL)
        self.process.wait(timeout=10)


def fraudsvc(role: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "fraudsvc.cli", role, *args]


# --------------------------------------------------------------------------- private servers


@dataclass
class PrivateRedis:
    """A redis-server of our own on a loopback port, no persistence (as in production)."""

    workdir: Path
    port: int = field(default_factory=free_port)
    service: Service | None = None
    binary: str | None = None
    """redis-server to run; default: the one on PATH."""

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        argv = [
            self.binary or shutil.which("redis-server") or "redis-server",
            "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
            "--dir", str(self.workdir),
        ]  # fmt: skip
        self.service = Service("redis", argv, dict(os.environ), self.workdir / "redis.log").start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise TimeoutError("redis-server did not start")

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()


def _pg_bin(tool: str) -> str:
    versions = sorted(PG_BIN_ROOT.glob("*/bin"), key=lambda p: p.parent.name)
    if not versions:
        raise FileNotFoundError(f"no PostgreSQL server binaries under {PG_BIN_ROOT}")
    return str(versions[-1] / tool)


@dataclass
class PrivatePostgres:
    """A PostgreSQL cluster of our own (initdb + pg_ctl) on a loopback port, trust auth.

    PostgreSQL refuses to run as root: as root, the cluster runs as the `postgres` user."""

    workdir: Path
    port: int = field(default_factory=free_port)
    binaries: Path | None = None
    """Folder of initdb and pg_ctl; default: the system's newest PostgreSQL."""

    def _tool(self, name: str) -> str:
        return str(self.binaries / name) if self.binaries else _pg_bin(name)

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


@contextmanager
def private_servers(prefix: str) -> Iterator[tuple[PrivatePostgres, PrivateRedis]]:
    root = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    postgres = PrivatePostgres(root / "pg")
    redis = PrivateRedis(root)
    postgres.init()
    postgres.start()
    redis.start()
    try:
        yield postgres, redis
    finally:
        redis.stop()
        with suppress(subprocess.CalledProcessError):
            postgres.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)
