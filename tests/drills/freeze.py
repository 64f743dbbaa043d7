"""Freeze a private PostgreSQL cluster (SIGSTOP) and thaw it (SIGCONT): a server that hangs.

A stopped cluster still accepts TCP connections (the kernel queues them on the listening
socket) but never answers, which is what a stalled disk, a swapped-out host or a paused VM looks
like to a client; unlike a stop or a cut connection, nothing fails fast. Every process of the
cluster is stopped (postmaster and its backends), so no query already running can finish.
"""

from __future__ import annotations

import os
import signal

from fraudsvc.private_servers import PrivatePostgres
from tests.bench import procstat


def freeze(postgres: PrivatePostgres) -> list[int]:
    """SIGSTOP the postmaster (first line of postmaster.pid) first, so that it forks no new
    backend, then every process it forked; returns them all for `thaw`."""
    postmaster = int((postgres.datadir / "postmaster.pid").read_text().split()[0])
    os.kill(postmaster, signal.SIGSTOP)
    children = procstat.children(postmaster)
    for pid in children:
        os.kill(pid, signal.SIGSTOP)
    return [postmaster, *children]


def thaw(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            continue
