"""Schemathesis against the service's own OpenAPI schema: every operation, generated inputs
valid and invalid, through a real `fraudsvc web` process. No 5xx; every response conforms to
the schema (status code, content type, body, headers).

A short run here (make test); `make fuzz` raises FRAUDSVC_FUZZ_EXAMPLES for a long one.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import Case
from schemathesis.core.result import Err, Ok

from fraudsvc.processes import Service, free_port, wait_http
from tests.service import API_KEY, service_env

EXAMPLES = int(os.environ.get("FRAUDSVC_FUZZ_EXAMPLES", "25"))


def in_the_past(case: Case) -> Case:
    """The service's clock rule, which a schema cannot state: a transaction is not dated later
    than now (plus a small skew). A generated timestamp from the future moves to the year 2000,
    so that a schema-valid body stays valid."""
    body = case.body
    text = body.get("timestamp") if isinstance(body, dict) else None
    if isinstance(body, dict) and isinstance(text, str):
        try:
            at = datetime.fromisoformat(text)
        except ValueError:
            return case
        if at.tzinfo is not None and at > datetime.now(UTC):
            body["timestamp"] = at.replace(year=2000, day=min(at.day, 28)).isoformat()
    return case


@pytest.fixture(scope="module")
def web_url(
    registry_dir: Path, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        **service_env(registry_dir, database_url, FRAUDSVC_EXPLAIN="all"),
        "FRAUDSVC_PORT": str(port),
        "FRAUDSVC_RATE_LIMIT_PER_SECOND": "0",
        "LOG_LEVEL": "WARNING",
    }
    log = tmp_path_factory.mktemp("fuzz") / "web.log"
    web = Service("web", [sys.executable, "-m", "fraudsvc.cli", "web"], env, log).start()
    try:
        wait_http(f"http://127.0.0.1:{port}/readyz", seconds=60)
        yield f"http://127.0.0.1:{port}"
    finally:
        web.stop()
    errors = [line for line in log.read_text().splitlines() if '"level":"ERROR"' in line]
    assert not errors, "the service logged errors while fuzzed:\n" + "\n".join(errors[:5])


def test_every_operation_conforms_and_never_fails(web_url: str) -> None:
    # schemathesis' lazy pytest loader (from_fixture) sets a private pytest attribute that
    # pytest 9 removed, so the operations are driven through its Python API instead
    schema = schemathesis.openapi.from_url(f"{web_url}/docs/openapi.json")
    results = list(schema.get_all_operations())
    broken = [r for r in results if isinstance(r, Err)]
    assert not broken, f"the schema has operations schemathesis cannot read: {broken}"
    operations = [r.ok() for r in results if isinstance(r, Ok)]
    assert len(operations) >= 6
    for operation in operations:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        @given(case=operation.as_strategy().map(in_the_past))
        def call(case: Case) -> None:
            case.call_and_validate(headers={"X-API-Key": API_KEY})

        call()
