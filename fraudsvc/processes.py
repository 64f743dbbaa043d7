"""Programs run as child processes, and waiting for what they serve.

`make demo` runs `fraudsvc web` and `fraudsvc worker` this way, `fraudsvc.embedded` its private
PostgreSQL and Redis, and the test tree's benchmark and drills their whole stack. Each program
runs in its own process group, so a stop or a SIGKILL also reaches its children (the worker's
LIME processes). Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    """A loopback TCP port nothing listens on now (the kernel's choice)."""
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """`count` different loopback TCP ports nothing listens on now: all are held bound until
    every one is chosen, so the kernel cannot hand out one twice (separate `free_port` calls
    may, and then the second server to start cannot bind it)."""
    with ExitStack() as held:
        ports = []
        for _ in range(count):
            s = held.enter_context(socket.socket())
            s.bind(("127.0.0.1", 0))
            ports.append(int(s.getsockname()[1]))
        return ports


def answers(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on the port."""
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def wait_http(url: str, seconds: float = 60.0, want: int = 200) -> None:
    """Poll `url` until it answers `want`; TimeoutError with the last answer otherwise."""
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
    """The argv of a fraudsvc command run by this interpreter (so by this environment)."""
    return [sys.executable, "-m", "fraudsvc.cli", role, *args]
