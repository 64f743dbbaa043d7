"""The edges of the API: every bad input names its field, keys and rate limits, body size, docs."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest

from fraudsvc.settings import Settings
from tests.service import API_KEY, running_service, service_env

pytestmark = pytest.mark.slow


def good(**overrides: Any) -> dict[str, Any]:
    return {
        "transaction_id": "v-" + secrets.token_hex(6),
        "timestamp": "2026-03-02T12:30:00Z",
        "customer_id": "C1",
        "terminal_id": "T1",
        "amount": 10.0,
        **overrides,
    }


def without(field: str) -> dict[str, Any]:
    body = good()
    del body[field]
    return body


VALIDATION_MATRIX = [
    (without("amount"), "amount", "missing required field"),
    (without("transaction_id"), "transaction_id", "missing required field"),
    (good(amount=-0.01), "amount", ">= 0"),
    (good(amount=1_000_000.01), "amount", "<= 1,000,000"),
    (good(amount=57.901), "amount", "at most 2 decimals"),
    (good(amount="twelve"), "amount", "decimal"),
    (good(amount=True), "amount", "Expected `decimal`"),
    (good(amount=None), "amount", "Expected `decimal`"),
    (good(timestamp="2026-03-02T12:30:00"), "timestamp", "timezone"),
    (good(timestamp="yesterday"), "timestamp", "datetime"),
    (good(timestamp="0001-01-01T00:00:00Z"), "timestamp", "from 1970-01-01"),
    (good(customer_id=""), "customer_id", "length >= 1"),
    (good(customer_id="C 1"), "customer_id", "regex"),
    (good(terminal_id="T" * 65), "terminal_id", "length <= 64"),
    (good(transaction_id="a/b"), "transaction_id", "regex"),
    (good(is_fraud=1), "is_fraud", "unknown field"),
    (good(score=0.5), "score", "unknown field"),
    (good(timestamp="2999-01-01T00:00:00Z"), "timestamp", "clock skew"),
    (good(currency="eur"), "currency", "ISO 4217"),
    (good(currency="EURO"), "currency", "ISO 4217"),
    (good(merchant_category="541"), "merchant_category", "regex"),
    (good(merchant_category=5411), "merchant_category", "Expected `str"),
    (good(merchant_country="XX"), "merchant_country", "ISO 3166-1"),
    (good(card_country="fr"), "card_country", "ISO 3166-1"),
    (good(channel="atm"), "channel", "ecommerce"),
    (good(device_id=""), "device_id", "length >= 1"),
    (good(device_id="d" * 129), "device_id", "length <= 128"),
    (good(ip="999.1.1.1"), "ip", "IPv4 or IPv6"),
    (good(ip="10.0.0.0/8"), "ip", "IPv4 or IPv6"),
    (good(attributes=[1]), "attributes", "Expected `object"),
    (good(attributes={"Bad": 1}), "attributes.Bad", "[a-z][a-z0-9_]{0,31}"),
    (good(attributes={"ok": [1]}), "attributes.ok", "a string of at most 256"),
    (good(attributes={"ok": {"a": 1}}), "attributes.ok", "a string of at most 256"),
    (good(attributes={"ok": "x" * 257}), "attributes.ok", "a string of at most 256"),
    (good(attributes={f"k{i}": i for i in range(33)}), "attributes", "length <= 32"),
]


@pytest.fixture
async def client(registry_dir: Path, database_url: str) -> Any:
    settings = Settings.from_env(
        service_env(
            registry_dir,
            database_url,
            FRAUDSVC_MAX_BODY_BYTES="2048",
            FRAUDSVC_RATE_LIMIT_PER_SECOND="2",
            FRAUDSVC_RATE_LIMIT_BURST="100",
        )
    )
    async with running_service(settings) as c:
        yield c


async def test_each_invalid_field_is_a_422_naming_the_field_and_rule(
    client: httpx.AsyncClient,
) -> None:
    for body, field, rule in VALIDATION_MATRIX:
        response = await client.post("/v1/transactions", json=body)
        assert response.status_code == 422, (field, response.text)
        error = response.json()
        assert error["error"] == "validation_failed"
        assert error["field"] == field, error
        assert rule in error["message"], error
        assert error["correlation_id"] == response.headers["x-correlation-id"]


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"NaN", b'{"amount": NaN}', b"[]", b'"text"', b""],
)
async def test_malformed_bodies_are_400(client: httpx.AsyncClient, content: bytes) -> None:
    response = await client.post(
        "/v1/transactions", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "malformed_body"


async def test_a_numeric_string_amount_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/transactions", json=good(amount="12.50"))
    assert response.status_code == 201
    detail = await client.get(f"/v1/transactions/{response.json()['transaction_id']}")
    assert detail.json()["transaction"]["amount"] == 12.5


async def test_huge_numbers_and_bodies_are_refused(client: httpx.AsyncClient) -> None:
    huge = b'{"transaction_id":"x1","timestamp":"2026-03-02T12:30:00Z","customer_id":"C",'
    huge += b'"terminal_id":"T","amount":1e400}'
    response = await client.post(
        "/v1/transactions", content=huge, headers={"content-type": "application/json"}
    )
    assert response.status_code in (400, 422)
    big = good(customer_id="C" * 60, padding="x" * 4000)
    response = await client.post("/v1/transactions", json=big)
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"


async def test_api_key_is_required_and_never_echoed(client: httpx.AsyncClient) -> None:
    missing = await client.post("/v1/transactions", json=good(), headers={"X-API-Key": ""})
    wrong = await client.post(
        "/v1/transactions", json=good(), headers={"X-API-Key": "guess-guess-guess"}
    )
    read = await client.get("/v1/transactions/x", headers={"X-API-Key": "nope-nope-nope"})
    for response in (missing, wrong, read):
        assert response.status_code == 401
        assert response.json()["error"] == "unauthorized"
        assert "guess" not in response.text
        assert API_KEY not in response.text
    assert "missing" in missing.json()["message"]


async def test_health_and_docs_need_no_key(client: httpx.AsyncClient) -> None:
    anonymous = {"X-API-Key": ""}
    assert (await client.get("/healthz", headers=anonymous)).json() == {"status": "ok"}
    ready = await client.get("/readyz", headers=anonymous)
    assert ready.status_code == 200
    checks = ready.json()["checks"]
    assert checks["database"]["ok"]
    assert checks["model"]["detail"] == "fraud-detection-model v1 from the registry"
    assert checks["redis"]["ok"]
    docs = await client.get("/docs", headers=anonymous)
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()
    schema = (await client.get("/docs/openapi.json", headers=anonymous)).json()
    post = schema["paths"]["/v1/transactions"]["post"]
    assert post["security"] == [{"ApiKey": []}]
    assert {"201", "409", "422", "503"} <= set(post["responses"])
    assert schema["components"]["securitySchemes"]["ApiKey"]["name"] == "X-API-Key"


async def test_rate_limit_answers_429_with_retry_after(
    registry_dir: Path, database_url: str
) -> None:
    settings = Settings.from_env(
        service_env(
            registry_dir,
            database_url,
            FRAUDSVC_RATE_LIMIT_PER_SECOND="1",
            FRAUDSVC_RATE_LIMIT_BURST="3",
        )
    )
    async with running_service(settings) as client:
        codes = [(await client.get("/v1/transactions/x")).status_code for _ in range(5)]
        limited = await client.get("/v1/transactions/x")
    assert codes[:3] == [404, 404, 404]
    assert 429 in codes[3:]
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.json()["error"] == "rate_limited"


async def test_correlation_id_is_taken_from_the_caller(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/transactions", json=good(), headers={"X-Correlation-ID": "order-4711"}
    )
    assert response.headers["x-correlation-id"] == "order-4711"
    assert response.json()["correlation_id"] == "order-4711"
    odd = await client.get("/healthz", headers={"X-Correlation-ID": "has spaces"})
    assert odd.headers["x-correlation-id"] != "has spaces"


async def test_requests_matching_no_route_are_counted_and_json(client: httpx.AsyncClient) -> None:
    missing = await client.get("/no/such/route")
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"
    metrics = (await client.get("/metrics")).text
    assert 'fraudsvc_http_requests_total{method="GET",route="unmatched",status="404"} 1' in metrics


async def test_the_documented_error_examples_are_what_the_service_sends(
    registry_dir: Path, database_url: str
) -> None:
    """Each error example in the OpenAPI schema is the body the service really answers with
    (the correlation id aside): the documentation cannot drift from the handlers."""
    settings = Settings.from_env(service_env(registry_dir, database_url))
    documented_id = "tx-20260302-000123"  # the examples' id; other tests may have used it
    tid = "tx-" + secrets.token_hex(6)
    scored = {
        "transaction_id": tid,
        "timestamp": "2026-03-02T12:30:00Z",
        "customer_id": "C000042",
        "terminal_id": "T001337",
        "amount": 57.9,
    }
    async with running_service(settings) as client:
        schema = (await client.get("/docs/openapi.json")).json()
        missing = await client.get(f"/v1/transactions/{tid}")
        assert (await client.post("/v1/transactions", json=scored)).status_code == 201
        answers = {
            400: await client.post(
                "/v1/transactions",
                content=b'{"amount": }',
                headers={"Content-Type": "application/json"},
            ),
            401: await client.get("/v1/transactions/x", headers={"X-API-Key": "wrong"}),
            403: await client.get("/v1/lists"),
            404: missing,
            409: await client.post("/v1/transactions", json={**scored, "amount": 58.9}),
            413: await client.post(
                "/v1/transactions",
                content=b'{"pad": "' + b"x" * settings.api.max_body_bytes + b'"}',
                headers={"Content-Type": "application/json"},
            ),
            422: await client.post("/v1/transactions", json={**scored, "card_country": "France"}),
        }
    documented: dict[int, list[dict[str, Any]]] = {}
    for operations in schema["paths"].values():
        for operation in operations.values():
            for code, response in operation["responses"].items():
                if int(code) < 400 or "ReadyOut" in str(response):
                    continue
                content = response["content"]["application/json"]
                assert content["schema"] == {"$ref": "#/components/schemas/ErrorBody"}
                documented.setdefault(int(code), []).extend(
                    e["value"] for e in content["examples"].values()
                )
    for code, answer in answers.items():
        assert answer.status_code == code
        text = answer.text.replace(tid, documented_id)
        body = {
            k: v for k, v in json.loads(text).items() if k != "correlation_id" and v is not None
        }
        examples = [{k: v for k, v in e.items() if k != "correlation_id"} for e in documented[code]]
        assert body in examples, f"{code}: the service sent {body}, the docs show {examples[0]}"
    for operations in schema["paths"].values():
        for operation in operations.values():
            if "requestBody" in operation:
                assert operation["requestBody"]["content"]["application/json"]["schema"][
                    "examples"
                ], operation["summary"]
