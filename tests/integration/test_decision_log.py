"""One JSON line per decision and per failed request, found by the correlation id a caller
quotes; FRAUDSVC_DECISION_LOG=false turns them off."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest

from fraudsvc.settings import Settings
from fraudsvc.telemetry.logs import setup_logging
from fraudsvc.telemetry.tracing import setup_tracing
from tests.service import running_service, service_env

pytestmark = pytest.mark.slow


def payment(tid: str) -> dict[str, Any]:
    return {
        "transaction_id": tid,
        "timestamp": "2026-03-02T12:30:00Z",
        "customer_id": "C7",
        "terminal_id": "T7",
        "amount": 12.5,
    }


def lines_of(err: str, cid: str) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    return [r for r in records if r.get("correlation_id") == cid]


async def test_a_decision_and_a_failure_each_write_one_line(
    registry_dir: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_logging("INFO", "json")
    setup_tracing("fraudsvc-test")  # as `fraudsvc web` does: spans keep ids, unrecorded or not
    settings = Settings.from_env(service_env(registry_dir, database_url, FRAUDSVC_EXPLAIN="none"))
    tid = "log-" + secrets.token_hex(6)
    new, again, bad = (f"corr-{secrets.token_hex(6)}" for _ in range(3))
    async with running_service(settings) as client:
        capsys.readouterr()
        first = await client.post(
            "/v1/transactions", json=payment(tid), headers={"X-Correlation-ID": new}
        )
        assert first.status_code == 201
        repeat = await client.post(
            "/v1/transactions", json=payment(tid), headers={"X-Correlation-ID": again}
        )
        assert repeat.status_code == 200
        broken = {**payment("log-" + secrets.token_hex(6)), "amount": -3}
        refused = await client.post(
            "/v1/transactions", json=broken, headers={"X-Correlation-ID": bad}
        )
        assert refused.status_code == 422
    err = capsys.readouterr().err

    (line,) = lines_of(err, new)
    answer = first.json()
    assert line["message"] == "decision"
    assert line["level"] == "INFO"
    assert line["transaction_id"] == tid
    assert line["decision"] == answer["decision"]
    assert line["score"] == pytest.approx(answer["score"], abs=1e-6)
    assert line["model_version"] == answer["model"]["version"]
    assert line["decided_by"] == "model"
    assert line["replay"] is False
    assert line["status"] == 201
    assert line["latency_ms"] > 0
    assert 0 < line["database_ms"] < line["latency_ms"]
    assert len(line["trace_id"]) == 32

    (replayed,) = lines_of(err, again)
    assert replayed["message"] == "decision"
    assert replayed["replay"] is True
    assert replayed["database_ms"] is None
    assert replayed["status"] == 200

    (failed,) = lines_of(err, bad)
    assert failed["message"] == "request failed"
    assert failed["status"] == 422
    assert failed["error"] == "ValidationException"
    assert failed["route"] == "/v1/transactions"


async def test_the_setting_turns_the_lines_off(
    registry_dir: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_logging("INFO", "json")
    env = service_env(registry_dir, database_url, FRAUDSVC_DECISION_LOG="false")
    settings = Settings.from_env(env)
    cid = f"corr-{secrets.token_hex(6)}"
    async with running_service(settings) as client:
        capsys.readouterr()
        tid = "log-" + secrets.token_hex(6)
        scored = await client.post(
            "/v1/transactions", json=payment(tid), headers={"X-Correlation-ID": cid}
        )
        assert scored.status_code == 201
        refused = await client.post(
            "/v1/transactions", json={"amount": 1}, headers={"X-Correlation-ID": cid}
        )
        assert refused.status_code == 422
    assert lines_of(capsys.readouterr().err, cid) == []
