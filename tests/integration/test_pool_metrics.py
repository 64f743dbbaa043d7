"""/metrics shows each database pool's connections against its bound, and how many statements
took a connection and how long they waited for one: a saturated pool is told from a slow
database."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from fraudsvc.settings import Settings
from tests.bench.load import parse_metrics
from tests.service import API_KEY, running_service, service_env, transaction

pytestmark = pytest.mark.slow
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def pool(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


async def test_the_pools_connections_and_waits_are_on_metrics(
    registry_dir: Path, database_url: str
) -> None:
    env = service_env(registry_dir, database_url, FRAUDSVC_EXPLAIN="none")
    settings = Settings.from_env(env | {"FRAUDSVC_DB_POOL_MAX": "2"})
    headers = {"X-API-Key": API_KEY}
    async with running_service(settings) as client:
        before = parse_metrics((await client.get("/metrics")).text)
        # twelve at once on two connections: most of them wait for one
        requests = [
            client.post("/v1/transactions", json=transaction(), headers=headers) for _ in range(12)
        ]
        answers = await asyncio.gather(*requests)
        assert [a.status_code for a in answers] == [201] * 12
        after = parse_metrics((await client.get("/metrics")).text)

    name = "fraudsvc_db_pool_connections"
    assert pool(after, name, pool="scoring", state="max") == 2
    assert pool(after, name, pool="side", state="max") == settings.database.side_pool_max
    assert pool(after, name, pool="scoring", state="in_use") == 0  # all answered
    assert 1 <= pool(after, name, pool="scoring", state="idle") <= 2
    acquires = "fraudsvc_db_pool_acquires_total"
    taken = pool(after, acquires, pool="scoring") - pool(before, acquires, pool="scoring")
    assert taken == 24  # two statements a transaction
    waited = "fraudsvc_db_pool_wait_seconds_total"
    assert pool(after, waited, pool="scoring") > pool(before, waited, pool="scoring")
