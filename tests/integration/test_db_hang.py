"""PostgreSQL hangs: a scoring request ends as a 503 with a message, nothing is half-written,
and the next request after the server resumes succeeds, without a restart.

A hung server is not a dead one: it accepts connections and never answers, so only the
service's own timeouts (FRAUDSVC_DB_TIMEOUT_SECONDS, 2 s here) can end the request. The
server is a private PostgreSQL of this test, every process of it paused with SIGSTOP for about
3 s (tests/drills/freeze.py), the machine's own is never touched.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from fraudsvc.db.admin import migrate
from fraudsvc.settings import Settings
from tests.drills.freeze import freeze, thaw
from tests.drills.stack import private_servers
from tests.integration.test_outage import stored
from tests.service import running_service, service_env
from tests.service import transaction as tx

pytestmark = pytest.mark.slow
HANG_SECONDS = 3.0


async def test_a_hung_database_answers_503_and_the_next_request_succeeds(
    registry_dir: Path,
) -> None:
    with private_servers("fraudsvc-test-hang-") as (postgres, _):
        await migrate(Settings.from_env({"DATABASE_URL": postgres.url}).database)
        settings = Settings.from_env(service_env(registry_dir, postgres.url))
        async with running_service(settings) as client:
            before = await client.post("/v1/transactions", json=tx())
            during_body = tx()
            frozen = freeze(postgres)
            try:
                during = asyncio.create_task(client.post("/v1/transactions", json=during_body))
                await asyncio.sleep(HANG_SECONDS)
            finally:
                thaw(frozen)
            answer = await during
            after = await client.post("/v1/transactions", json=tx())
        during_stored = await stored(postgres.url, during_body["transaction_id"])

    assert before.status_code == 201
    assert answer.status_code == 503  # ended by the timeout while the server was paused
    assert answer.json()["error"] == "database_unavailable"
    assert "retry" in answer.json()["message"]
    # the statement may have reached the server before it paused: stored whole, or not at all
    assert during_stored in ((0, 0), (1, 1))
    assert after.status_code == 201
