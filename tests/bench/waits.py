"""What the benchmark database's busy backends were waiting on during a run.

A thread samples pg_stat_activity every `INTERVAL` seconds on a connection of its own and
counts, for each active backend of the database (not its own), the class of its wait: on the
CPU (no wait event), flushing the WAL (`IO:WALSync`, `IO:WALWrite`, `LWLock:WALWrite` and the
other WAL locks: the commit path), reading data pages from the operating system
(`IO:DataFileRead`: pages not in shared_buffers), locks, the client, or something else. Shares
of these samples tell, per fixed-rate run, whether a slow run waited on commits, on the disk or
on the CPU; pg_stat_activity is shared memory, so a sample costs the server a fraction of a
millisecond.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import Counter
from types import TracebackType

import asyncpg

INTERVAL = 0.05
CLASSES = ("cpu", "wal", "data_read", "lock", "client", "other")
SAMPLE_SQL = (
    "SELECT wait_event_type, wait_event FROM pg_stat_activity "
    "WHERE datname = current_database() AND state = 'active' AND pid <> pg_backend_pid()"
)


def wait_class(event_type: str | None, event: str | None) -> str:
    """The class of one backend's wait (pg_stat_activity's wait_event_type and wait_event)."""
    if event_type is None:
        return "cpu"
    name = event or ""
    if event_type in ("IO", "LWLock") and name.startswith("WAL"):
        return "wal"
    if event_type == "IO" and name == "DataFileRead":
        return "data_read"
    if event_type == "Lock":
        return "lock"
    if event_type == "Client":
        return "client"
    return "other"


def shares(counts: Counter[str]) -> dict[str, float]:
    """Each class's share of the samples, in per cent (NaN for all when none was taken)."""
    total = sum(counts.values())
    return {c: 100.0 * counts[c] / total if total else float("nan") for c in CLASSES}


class WaitSampler:
    """`with WaitSampler(url) as sampler: ...` then `sampler.counts`; without a database
    (None) or when it does not answer, nothing is counted."""

    def __init__(self, database_url: str | None, interval: float = INTERVAL) -> None:
        self.database_url = database_url
        self.interval = interval
        self.counts: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wait-sampler", daemon=True)

    def __enter__(self) -> WaitSampler:
        if self.database_url is not None:
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        # without the database the run is measured all the same; its column reads n/a
        with contextlib.suppress(OSError, asyncpg.PostgresError):
            asyncio.run(self._sample())

    async def _sample(self) -> None:
        assert self.database_url is not None
        connection = await asyncpg.connect(self.database_url)
        try:
            while not self._stop.is_set():
                for row in await connection.fetch(SAMPLE_SQL):
                    self.counts[wait_class(row["wait_event_type"], row["wait_event"])] += 1
                await asyncio.sleep(self.interval)
        finally:
            await connection.close()
