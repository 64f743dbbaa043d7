"""The floor under `fraudsvc web`: the same two database round trips, and nothing else.

`python -m tests.bench.bare PORT` serves `POST /v1/transactions` as a bare ASGI callable under
uvicorn (the same server, loop and HTTP parser as `fraudsvc web`): it decodes the JSON body,
sends the scoring path's window read (the served declaration's statement, with its arguments
built the way the service builds them) and its atomic write (transaction, prediction) with a
constant score, on one asyncpg pool with the scoring pool's settings (generic plans, no reset
query, the plans renewed every FRAUDSVC_DB_REPLAN_SECONDS as the service renews its own), and
answers a small JSON object. No framework, validation, model, rules, metrics,
traces, logs or explanation queue. What `fraudsvc web` achieves against it at saturation, in
the same run on the same database, is the share of the machine fraudsvc's own code leaves to
PostgreSQL (issue 15: at least 85 %).
"""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import datetime
from typing import Any

import asyncpg
import msgspec
import uvicorn

from fraudsvc.db.engine import GENERIC_PLANS, replan
from fraudsvc.db.literals import float_array
from fraudsvc.db.queries import INSERT_SQL, transaction_args
from fraudsvc.db.windows import WindowRead
from fraudsvc.features import DECLARATION
from fraudsvc.settings import DEFAULT_POOL_MAX, Settings
from fraudsvc.transaction import Transaction

POOL_SIZE = DEFAULT_POOL_MAX  # the scoring pool's, as the service runs in the bench
PREDICTION = (0.01, "allow", 0.5, 0.9, "bare", "0", DECLARATION.hash)


class Body(msgspec.Struct):
    transaction_id: str
    timestamp: datetime
    customer_id: str
    terminal_id: str
    amount: float
    currency: str | None = None
    merchant_category: str | None = None
    merchant_country: str | None = None
    card_country: str | None = None
    channel: str | None = None
    device_id: str | None = None
    ip: str | None = None


class Bare:
    def __init__(self, database_url: str, replan_seconds: float) -> None:
        self.database_url = database_url
        self.replan_seconds = replan_seconds
        self.replanning: asyncio.Task[None] | None = None
        self.read = WindowRead(DECLARATION)
        self.pool: asyncpg.Pool | None = None
        self.vector = float_array([0.0] * len(DECLARATION.names))  # as the service sends it

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
            return
        if scope["method"] == "GET":  # readiness
            await self.answer(send, 200, b'{"ready": true}')
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = msgspec.json.decode(b"".join(chunks), type=Body)
        tx = Transaction(
            transaction_id=body.transaction_id,
            timestamp=body.timestamp,
            customer_id=body.customer_id,
            terminal_id=body.terminal_id,
            amount_minor=round(body.amount * 100),
            currency=body.currency,
            merchant_category=body.merchant_category,
            merchant_country=body.merchant_country,
            card_country=body.card_country,
            channel=body.channel,
            device_id=body.device_id,
            ip=body.ip,
            attributes=None,
        )
        assert self.pool is not None
        args, _ = self.read.params(tx)
        await self.pool.fetch(self.read.sql, *args)
        created = await self.pool.fetchval(
            INSERT_SQL,
            *transaction_args(tx),
            *PREDICTION,
            self.vector,
            None,  # reasons
            "bare",  # correlation id
            None,  # no explanation
            None,  # trace context
            "allow",
            "model",
            None,  # ruleset version
            None,  # rule hits
            False,  # no review case
        )
        answer = msgspec.json.encode({"transaction_id": tx.transaction_id, "at": created})
        await self.answer(send, 201, answer)

    @staticmethod
    async def answer(send: Any, status: int, body: bytes) -> None:
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.pool = await asyncpg.create_pool(
                    self.database_url,
                    min_size=2,
                    max_size=POOL_SIZE,
                    server_settings=GENERIC_PLANS,
                    reset=_no_reset,
                )
                if self.replan_seconds > 0:  # plans of the same age as the service's
                    self.replanning = asyncio.create_task(
                        replan(self.replan_seconds, lambda: self.pool)
                    )
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.replanning is not None:
                    self.replanning.cancel()
                if self.pool is not None:
                    await self.pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _no_reset(_: asyncpg.Connection) -> None:
    """As the service's pools: no session reset query after each use."""


def main() -> None:
    port = int(sys.argv[1])
    app = Bare(os.environ["DATABASE_URL"], Settings.from_env().database.replan_seconds)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        loop="uvloop",
        http="httptools",
        server_header=False,
    )


if __name__ == "__main__":
    main()
