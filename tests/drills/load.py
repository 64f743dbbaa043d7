"""Open-loop load: scoring requests sent on a fixed schedule, whatever the answers do.

`fraudsvc replay` waits for a free slot (and for the customer's previous transaction) before
it sends, so a stalled service slows the load down and hides the fault behind it. Here request
i leaves at start + i / rate whether or not the earlier ones have returned, as independent
clients would send them; a fault meets the full rate. Every request's outcome is kept (status,
the error's message, client-side time), so a drill can hold each 2xx against the database.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from dataclasses import dataclass, field
from urllib.parse import urlparse

import polars as pl

from fraudsvc.replay import _payload

TIMEOUT_SECONDS = 15.0
"""A request with no answer by then counts as unanswered (the service hung)."""


@dataclass(frozen=True)
class Outcome:
    transaction_id: str
    status: int | None
    """The HTTP status, None when no answer came (connection refused or dropped, timeout)."""
    seconds: float
    sent_at: float
    """When it left, in seconds from the start of the load."""
    error: str = ""
    """The error body's `error` and `message`, or the client's exception class."""
    explanation_owed: bool = False


@dataclass
class Load:
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0
    """The sending time: from the first send to one interval after the last."""
    late: float = 0.0
    """The most a send left after its scheduled time (the load generator falling behind)."""

    @property
    def rate(self) -> float:
        """Requests per second actually sent (the last send's time, not the last answer's)."""
        return len(self.outcomes) / self.seconds if self.seconds else 0.0

    def with_status(self, low: int, high: int) -> list[Outcome]:
        return [o for o in self.outcomes if o.status is not None and low <= o.status < high]

    @property
    def unanswered(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status is None]


class Client:
    """Keep-alive HTTP/1.1 over asyncio streams, one connection per request in flight.

    httpx's pool scans every connection for every queued request: with hundreds in flight (a
    hung database at 300/s) the load generator itself spent seconds of CPU per second there,
    fell behind its schedule and starved its own timers (seen in the first postgres-hang run).
    A request here costs a write and two reads; the service answers with a Content-Length.
    """

    def __init__(self, url: str, api_key: str) -> None:
        parts = urlparse(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.api_key = api_key
        self.idle: deque[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = deque()

    async def post(self, path: str, body: dict[str, object]) -> tuple[int, bytes]:
        data = json.dumps(body).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"X-API-Key: {self.api_key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        ).encode()
        reader, writer = (
            self.idle.popleft()
            if self.idle
            else await asyncio.open_connection(self.host, self.port)
        )
        try:
            writer.write(head + data)
            status = int((await reader.readuntil(b"\r\n")).split()[1])
            length, keep = 0, True
            while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
                name, _, value = line.decode("latin-1").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
                elif name.lower() == "connection" and "close" in value.lower():
                    keep = False
            content = await reader.readexactly(length)
        except BaseException:
            writer.close()
            raise
        if keep:
            self.idle.append((reader, writer))
        else:
            writer.close()
        return status, content

    def close(self) -> None:
        while self.idle:
            self.idle.popleft()[1].close()


async def _send(client: Client, row: dict[str, object], sent_at: float) -> Outcome:
    tid = str(row["transaction_id"])
    started = time.perf_counter()
    try:
        async with asyncio.timeout(TIMEOUT_SECONDS):
            status, content = await client.post("/v1/transactions", _payload(row))
    except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
        return Outcome(tid, None, time.perf_counter() - started, sent_at, type(exc).__name__)
    seconds = time.perf_counter() - started
    try:
        body = json.loads(content)
    except ValueError:
        body = {}
    if status in (200, 201):
        owed = body["explanation"]["status"] != "not_requested"
        return Outcome(tid, status, seconds, sent_at, explanation_owed=owed)
    error = f"{body.get('error', '')}: {body.get('message', '')}".strip(": ")
    return Outcome(tid, status, seconds, sent_at, error)


async def open_loop(url: str, api_key: str, rows: pl.DataFrame, rate: float) -> Load:
    """Send `rows` at `rate` per second, open loop; every outcome once all have answered."""
    load = Load()
    client = Client(url, api_key)
    tasks: list[asyncio.Task[Outcome]] = []
    started = time.perf_counter()
    try:
        for i, row in enumerate(rows.iter_rows(named=True)):
            wait = started + i / rate - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            else:
                load.late = max(load.late, -wait)
                await asyncio.sleep(0)  # behind schedule: still let answers and timers run
            sent_at = time.perf_counter() - started
            tasks.append(asyncio.create_task(_send(client, row, sent_at)))
        load.seconds = time.perf_counter() - started + 1 / rate
        load.outcomes = list(await asyncio.gather(*tasks))
    finally:
        client.close()
    return load
