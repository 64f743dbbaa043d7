"""Scoring over HTTP against the real PostgreSQL, Redis and MLflow store: the happy path,
reads, idempotency (also under concurrent duplicates), conflicts and labels."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from fraudsvc.db import queries
from fraudsvc.db.engine import DatabaseUnavailable
from fraudsvc.db.records import NewPrediction
from fraudsvc.features import DECLARATION
from fraudsvc.settings import Settings
from fraudsvc.transaction import Transaction
from tests.service import running_service, service_env, transaction

pytestmark = pytest.mark.slow


def tx(**overrides: Any) -> dict[str, Any]:
    """A request with an offset timestamp: the service must store it in UTC."""
    return transaction(**{"timestamp": "2026-03-02T12:30:00+01:00", "amount": 57.9, **overrides})


async def count(database_url: str, table: str, transaction_id: str) -> int:
    connection = await asyncpg.connect(database_url)
    try:
        value = await connection.fetchval(
            f"SELECT count(*) FROM {table} WHERE transaction_id = $1", transaction_id
        )
    finally:
        await connection.close()
    return int(value)


async def test_score_stores_and_answers_the_full_prediction(
    registry_dir: Path, database_url: str
) -> None:
    settings = Settings.from_env(service_env(registry_dir, database_url))
    body = tx()
    async with running_service(settings) as client:
        response = await client.post("/v1/transactions", json=body)
        assert response.status_code == 201
        out = response.json()
        assert out["transaction_id"] == body["transaction_id"]
        assert 0.0 <= out["score"] <= 1.0
        assert out["decision"] in ("allow", "review", "block")
        assert set(out["thresholds"]) == {"review", "block"}
        assert out["model"] == {"name": "fraud-detection-model", "version": "1"}
        assert out["correlation_id"] == response.headers["x-correlation-id"]
        flagged = out["decision"] != "allow"
        assert (out["reasons"] is not None) == flagged
        assert out["explanation"]["status"] == ("pending" if flagged else "not_requested")

        read = await client.get(f"/v1/transactions/{body['transaction_id']}")
        assert read.status_code == 200
        detail = read.json()
        assert detail["transaction"]["timestamp"] == "2026-03-02T11:30:00Z"  # stored in UTC
        assert detail["prediction"] == out
        assert list(detail["features"]) == list(DECLARATION.names)
        assert detail["features"]["amount"] == 57.9
        assert detail["label"] is None


async def test_reasons_on_request_are_lightgbm_contributions(
    registry_dir: Path, database_url: str
) -> None:
    settings = Settings.from_env(service_env(registry_dir, database_url))
    async with running_service(settings) as client:
        out = (await client.post("/v1/transactions?reasons=true", json=tx())).json()
    reasons = out["reasons"]
    assert len(reasons) == 5
    assert {r["feature"] for r in reasons} <= set(DECLARATION.names)
    magnitudes = [abs(r["contribution"]) for r in reasons]
    assert magnitudes == sorted(magnitudes, reverse=True)


async def test_a_repeat_is_answered_from_storage_and_never_rescored(
    registry_dir: Path, database_url: str
) -> None:
    settings = Settings.from_env(service_env(registry_dir, database_url))
    body = tx()
    async with running_service(settings) as client:
        first = await client.post("/v1/transactions", json=body)
        again = await client.post(
            "/v1/transactions", json={**body, "timestamp": "2026-03-02T11:30:00Z"}
        )
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.headers["x-idempotent-replay"] == "true"
    assert again.json() == first.json()
    assert await count(database_url, "predictions", body["transaction_id"]) == 1


async def test_concurrent_duplicates_store_one_prediction_and_agree(
    registry_dir: Path, database_url: str
) -> None:
    settings = Settings.from_env(service_env(registry_dir, database_url))
    body = tx()
    async with running_service(settings) as client:
        responses = await asyncio.gather(
            *(client.post("/v1/transactions", json=body) for _ in range(20))
        )
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * 19 + [201]
    assert len({r.content for r in responses}) == 1
    assert sum(r.headers.get("x-idempotent-replay") == "true" for r in responses) == 19
    assert await count(database_url, "predictions", body["transaction_id"]) == 1


async def test_same_id_with_another_body_is_a_conflict_naming_the_field(
    registry_dir: Path, database_url: str
) -> None:
    settings = Settings.from_env(service_env(registry_dir, database_url))
    body = tx()
    async with running_service(settings) as client:
        await client.post("/v1/transactions", json=body)
        response = await client.post("/v1/transactions", json={**body, "amount": 58.0})
    assert response.status_code == 409
    error = response.json()
    assert error["error"] == "conflict"
    assert error["field"] == "amount"
    assert body["transaction_id"] in error["message"]


async def test_a_lost_race_across_processes_writes_nothing(
    registry_dir: Path, database_url: str
) -> None:
    """Two processes that both read "not stored" race on the unique key: the loser's single
    statement writes no transaction, prediction or explanation row at all."""
    settings = Settings.from_env(service_env(registry_dir, database_url))
    body = tx()
    async with running_service(settings) as client:
        await client.post("/v1/transactions", json=body)
        stored = await queries.fetch_transaction(body["transaction_id"])
        assert stored is not None
        late = NewPrediction(
            body=stored.body,
            score=0.99,
            decision="block",
            threshold_review=0.1,
            threshold_block=0.5,
            model_name="other",
            model_version="9",
            feature_hash="x",
            features=[0.0] * len(DECLARATION.names),
            reasons=None,
            correlation_id="late",
            explain_reason="flagged",
            model_decision="block",
            decided_by="model",
            ruleset_version=None,
            rule_hits=None,
        )
        assert await queries.insert_prediction(late) is None
        again = await queries.fetch_transaction(body["transaction_id"])
    assert repr(again) == repr(stored)  # the same row (repr: the vector holds NaN)


async def test_a_failing_write_leaves_nothing_half_written(
    registry_dir: Path, database_url: str
) -> None:
    settings = Settings.from_env(service_env(registry_dir, database_url))
    tid = "t-" + secrets.token_hex(6)
    async with running_service(settings):
        broken = NewPrediction(
            body=Transaction(tid, datetime(2026, 3, 2, 12, tzinfo=UTC), "C1", "T1", 1000),
            score=1.5,  # breaks the predictions_score_range check
            decision="block",
            threshold_review=0.1,
            threshold_block=0.5,
            model_name="m",
            model_version="1",
            feature_hash="x",
            features=[0.0] * len(DECLARATION.names),
            reasons=None,
            correlation_id="c",
            explain_reason="flagged",
            model_decision="block",
            decided_by="model",
            ruleset_version=None,
            rule_hits=None,
        )
        with pytest.raises(asyncpg.exceptions.CheckViolationError):
            await queries.insert_prediction(broken)
    for table in ("transactions", "predictions", "explanations"):
        assert await count(database_url, table, tid) == 0


async def test_labels_are_idempotent_and_corrections_update(
    registry_dir: Path, database_url: str
) -> None:
    settings = Settings.from_env(service_env(registry_dir, database_url))
    body = tx()
    tid = body["transaction_id"]
    async with running_service(settings) as client:
        unknown = await client.post(
            "/v1/transactions/nope/label", json={"is_fraud": True, "source": "analyst"}
        )
        assert unknown.status_code == 404
        assert "score it before labelling" in unknown.json()["message"]
        await client.post("/v1/transactions", json=body)
        label = {"is_fraud": 1, "source": "chargeback"}
        first = await client.post(f"/v1/transactions/{tid}/label", json=label)
        repeat = await client.post(f"/v1/transactions/{tid}/label", json=label)
        corrected = await client.post(
            f"/v1/transactions/{tid}/label", json={"is_fraud": False, "source": "analyst"}
        )
        detail = (await client.get(f"/v1/transactions/{tid}")).json()
    assert (first.status_code, first.json()["status"]) == (201, "created")
    assert (repeat.status_code, repeat.json()["status"]) == (200, "unchanged")
    assert repeat.json()["updated_at"] == first.json()["updated_at"]
    assert (corrected.status_code, corrected.json()["status"]) == (200, "updated")
    assert detail["label"]["is_fraud"] is False
    assert detail["label"]["source"] == "analyst"
    assert await count(database_url, "labels", tid) == 1


async def test_policy_all_writes_a_pending_explanation_with_the_prediction(
    registry_dir: Path, database_url: str
) -> None:
    settings = Settings.from_env(service_env(registry_dir, database_url, FRAUDSVC_EXPLAIN="all"))
    body = tx()
    async with running_service(settings) as client:
        out = (await client.post("/v1/transactions", json=body)).json()
    assert out["explanation"] == {
        "status": "pending",
        "url": f"/v1/transactions/{body['transaction_id']}/explanation",
    }
    assert await count(database_url, "explanations", body["transaction_id"]) == 1


async def test_unknown_transaction_reads_are_404(registry_dir: Path, database_url: str) -> None:
    settings = Settings.from_env(service_env(registry_dir, database_url))
    async with running_service(settings) as client:
        response = await client.get("/v1/transactions/does-not-exist")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_database_unavailable_is_a_runtime_error() -> None:
    assert issubclass(DatabaseUnavailable, RuntimeError)
