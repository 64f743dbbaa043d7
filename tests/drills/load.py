"""Open-loop load: scoring requests sent on a fixed schedule, whatever the answers do.

`fraudsvc replay` waits for a free slot (and for the customer's previous transaction) before
it sends, so a stalled service slows the load down and hides the fault behind it. Here request
i leaves at start + i / rate whether or not the earlier ones have returned, as independent
clients would send them; a fault meets the full rate. Every request's outcome is kept (status,
the error's message, client-side time), so a drill can hold each 2xx against the database.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import httpx
import polars as pl

from fraudsvc.replay import _payload

MAX_IN_FLIGHT = 1024
"""Connections the client may open: above the rate times the slowest answer, so the schedule,
not the connection pool, sets when a request leaves."""


@dataclass(frozen=True)
class Outcome:
    transaction_id: str
    status: int | None
    """The HTTP status, None when no answer came (connection refused or dropped, timeout)."""
    seconds: float
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


async def _send(client: httpx.AsyncClient, row: dict[str, object]) -> Outcome:
    tid = str(row["transaction_id"])
    started = time.perf_counter()
    try:
        response = await client.post("/v1/transactions", json=_payload(row))
    except httpx.HTTPError as exc:
        return Outcome(tid, None, time.perf_counter() - started, type(exc).__name__)
    seconds = time.perf_counter() - started
    if response.status_code in (200, 201):
        owed = response.json()["explanation"]["status"] != "not_requested"
        return Outcome(tid, response.status_code, seconds, explanation_owed=owed)
    try:
        body = response.json()
        error = f"{body.get('error', '')}: {body.get('message', '')}".strip(": ")
    except ValueError:
        error = ""
    return Outcome(tid, response.status_code, seconds, error)


async def open_loop(url: str, api_key: str, rows: pl.DataFrame, rate: float) -> Load:
    """Send `rows` at `rate` per second, open loop; every outcome once all have answered."""
    load = Load()
    limits = httpx.Limits(max_connections=MAX_IN_FLIGHT, max_keepalive_connections=64)
    async with httpx.AsyncClient(
        base_url=url, headers={"X-API-Key": api_key}, limits=limits, timeout=15.0
    ) as client:
        tasks: list[asyncio.Task[Outcome]] = []
        started = time.perf_counter()
        for i, row in enumerate(rows.iter_rows(named=True)):
            wait = started + i / rate - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            else:
                load.late = max(load.late, -wait)
            tasks.append(asyncio.create_task(_send(client, row)))
        sent = time.perf_counter() - started
        load.outcomes = list(await asyncio.gather(*tasks))
    load.seconds = sent + 1 / rate
    return load
