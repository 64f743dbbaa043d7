"""PostgreSQL outage: 503 with a message, nothing half-written, recovery without a restart.

The service reaches the real PostgreSQL through a TCP proxy owned by the test; cutting the
proxy drops every connection and refuses new ones, as a crashed or unreachable server would.
"""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from fraudsvc.settings import Settings
from tests.service import proxied, running_service, service_env
from tests.service import transaction as tx

pytestmark = pytest.mark.slow


async def stored(database_url: str, transaction_id: str) -> tuple[int, int]:
    connection = await asyncpg.connect(database_url)
    try:
        row = await connection.fetchrow(
            "SELECT (SELECT count(*) FROM transactions WHERE transaction_id = $1) AS t, "
            "(SELECT count(*) FROM predictions WHERE transaction_id = $1) AS p",
            transaction_id,
        )
    finally:
        await connection.close()
    return int(row["t"]), int(row["p"])


async def test_database_outage_answers_503_and_recovers_by_itself(
    registry_dir: Path, database_url: str
) -> None:
    proxy, via_proxy = await proxied(database_url)
    settings = Settings.from_env(service_env(registry_dir, via_proxy))
    async with running_service(settings) as client:
        before = await client.post("/v1/transactions", json=tx())
        assert before.status_code == 201

        await proxy.cut()
        during = [tx() for _ in range(5)]
        answers = [await client.post("/v1/transactions", json=body) for body in during]
        ready = await client.get("/readyz")
        read = await client.get(f"/v1/transactions/{before.json()['transaction_id']}")

        await proxy.restore()
        after = await client.post("/v1/transactions", json=tx())
        retried = await client.post("/v1/transactions", json=during[0])
        ready_again = await client.get("/readyz")
    await proxy.cut()

    for answer in answers:
        assert answer.status_code == 503
        assert answer.json()["error"] == "database_unavailable"
        assert "retry" in answer.json()["message"]
        assert answer.headers["retry-after"] == "1"
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"]["ok"] is False
    assert read.status_code == 503
    for body in during[1:]:
        assert await stored(database_url, body["transaction_id"]) == (0, 0)
    assert after.status_code == 201
    assert retried.status_code == 201
    assert await stored(database_url, during[0]["transaction_id"]) == (1, 1)
    assert ready_again.status_code == 200


async def test_the_service_starts_while_the_database_is_down(
    registry_dir: Path, database_url: str
) -> None:
    proxy, via_proxy = await proxied(database_url)
    await proxy.cut()
    async with running_service(Settings.from_env(service_env(registry_dir, via_proxy))) as client:
        down = await client.post("/v1/transactions", json=tx())
        await proxy.restore()
        up = await client.post("/v1/transactions", json=tx())
    await proxy.cut()
    assert down.status_code == 503
    assert up.status_code == 201
