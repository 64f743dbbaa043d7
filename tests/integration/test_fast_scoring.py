"""The scoring fast path answers exactly as Litestar's route does (its oracle): the same status,
headers, body and log line for every kind of scoring request, whether the fast path serves it
or hands it to Litestar. Each request is sent to a service with the fast path
(FRAUDSVC_FAST_SCORING, the default) and to one without, with ids of the same length, so only
ids, times and durations may differ."""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.enums import ScopeType
from litestar.types import Receive, Scope, Send

from fraudsvc.api.fast_scoring import FastScoring
from fraudsvc.app import serve_app
from fraudsvc.settings import Settings
from fraudsvc.telemetry.logs import setup_logging
from fraudsvc.telemetry.tracing import setup_tracing
from tests.service import API_KEY, running_service, service_env

pytestmark = pytest.mark.slow

VARYING = {
    "correlation_id",
    "scored_at",
    "time",
    "latency_ms",
    "database_ms",
    "trace_id",
    "span_id",
}
NOW = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+\+00:00")
HEADERS_COMPARED = ("content-type", "content-length", "x-idempotent-replay", "retry-after")


def body(tag: str, **overrides: Any) -> dict[str, Any]:
    """A transaction of its own customer and terminal (no history: the same features for both
    services)."""
    return {
        "transaction_id": f"fast-{tag}",
        "timestamp": "2026-03-02T12:30:00Z",
        "customer_id": f"C-{tag}",
        "terminal_id": f"T-{tag}",
        "amount": 42.0,
        **overrides,
    }


def cases(tag: str) -> list[tuple[str, dict[str, Any]]]:
    """(name, httpx request arguments): every kind of scoring request, `tag` making the ids."""
    full = body(
        f"{tag}v2",
        currency="EUR",
        merchant_category="5732",
        merchant_country="FR",
        card_country="FR",
        channel="ecommerce",
        device_id="dev-0001",
        ip="2001:DB8::1",
        attributes={"three_ds": True, "wallet": "none", "basket_items": 3},
    )
    plain = body(f"{tag}v1")
    key = {"X-API-Key": API_KEY}
    return [
        ("five fields", {"json": plain, "headers": key}),
        ("every field", {"json": full, "headers": key}),
        ("a repeat", {"json": plain, "headers": key}),
        ("the same id, another body", {"json": {**plain, "amount": 43.0}, "headers": key}),
        ("from the future", {"json": body(f"{tag}fu", timestamp="2999-01-01T00:00:00Z")}),
        ("a negative amount", {"json": body(f"{tag}ne", amount=-3)}),
        ("an unknown field", {"json": body(f"{tag}un", colour="red")}),
        ("a bad IP", {"json": body(f"{tag}ip", ip="300.1.1.1")}),
        ("not JSON", {"content": b"{not json", "headers": {"content-type": "application/json"}}),
        ("no body", {}),
        ("a list", {"json": [body(f"{tag}li")]}),
        ("too large", {"json": body(f"{tag}la", customer_id="C" + "x" * 20_000)}),
        ("reasons asked", {"json": body(f"{tag}re"), "params": {"reasons": "true"}}),
        ("reasons malformed", {"json": body(f"{tag}rm"), "params": {"reasons": "maybe"}}),
        ("no key", {"json": body(f"{tag}nk"), "headers": {"X-API-Key": ""}}),
        ("a wrong key", {"json": body(f"{tag}wk"), "headers": {"X-API-Key": "wrong-key-123"}}),
        ("text/plain", {"content": json.dumps(body(f"{tag}tp")).encode()}),
    ]


def normalised(value: Any, tag: str) -> Any:
    """Without the values that vary from request to request, and with the ids' own part (the
    tag of the run) replaced: messages quote ids."""
    if isinstance(value, dict):
        return {k: normalised(v, tag) for k, v in value.items() if k not in VARYING}
    if isinstance(value, list):
        return [normalised(v, tag) for v in value]
    if isinstance(value, str):  # and the clock, which the future's message quotes
        return NOW.sub("NOW", value.replace(tag, "TAG"))
    return value


def log_line(err: str, cid: str, tag: str) -> dict[str, Any] | None:
    for line in err.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("correlation_id") == cid and record.get("logger") == (
                "fraudsvc.api.middleware"
            ):
                return normalised(record, tag)  # type: ignore[no-any-return]
    return None


class HandedOn:
    """Counts the requests that reach the Litestar app (in the fast service: the ones the fast
    path handed on), observed on the class since the app is built inside the service."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        original = Litestar.__call__

        async def counted(app: Litestar, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == ScopeType.HTTP:
                self.count += 1
            await original(app, scope, receive, send)

        monkeypatch.setattr(Litestar, "__call__", counted)


async def answers(
    registry_dir: Path,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
    fast: bool,
    tag: str,
    handed_on: HandedOn,
) -> dict[str, tuple[Any, ...]]:
    env = service_env(
        registry_dir,
        database_url,
        FRAUDSVC_EXPLAIN="none",
        FRAUDSVC_FAST_SCORING=str(fast).lower(),
        FRAUDSVC_MAX_BODY_BYTES="16384",
    )
    seen: dict[str, tuple[Any, ...]] = {}
    async with running_service(Settings.from_env(env)) as client:
        for name, request in cases(tag):
            cid = f"cid-{tag}-{secrets.token_hex(4)}"
            headers = {"X-API-Key": API_KEY, **request.pop("headers", {}), "X-Correlation-ID": cid}
            capsys.readouterr()
            before = handed_on.count
            response = await client.post("/v1/transactions", headers=headers, **request)
            err = capsys.readouterr().err
            litestar = handed_on.count > before
            content = response.json() if response.content else None
            seen[name] = (
                response.status_code,
                response.headers.get("x-correlation-id") == cid,
                isinstance(content, dict) and content.get("correlation_id") == cid,
                {h: response.headers.get(h) for h in HEADERS_COMPARED},
                normalised(content, tag),
                log_line(err, cid, tag),
                litestar,
            )
    return seen


FAST = {"five fields", "every field", "a repeat", "the same id, another body", "from the future"}
FAST |= {"no key", "a wrong key", "text/plain"}
"""The kinds the fast path answers itself (a body sent as text/plain is read as JSON, as
Litestar reads it); the others (a query string, a body that does not decode and validate as a
transaction, such as a negative amount or a bad IP, or one that is too large) go to Litestar."""


async def test_the_fast_path_answers_as_litestar_does(
    registry_dir: Path,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    setup_logging("INFO", "json")
    setup_tracing("fraudsvc-test")
    tag = secrets.token_hex(3)
    handed_on = HandedOn(monkeypatch)
    fast = await answers(registry_dir, database_url, capsys, True, f"{tag}a", handed_on)
    plain = await answers(registry_dir, database_url, capsys, False, f"{tag}b", handed_on)
    assert fast.keys() == plain.keys()
    # which way each request went: the fast path's own, Litestar's all of them
    assert {name for name, answer in fast.items() if not answer[-1]} == FAST
    assert all(answer[-1] for answer in plain.values())
    fast = {name: answer[:-1] for name, answer in fast.items()}
    plain = {name: answer[:-1] for name, answer in plain.items()}
    on = Settings.from_env(service_env(registry_dir, database_url))
    off = Settings.from_env(service_env(registry_dir, database_url, FRAUDSVC_FAST_SCORING="false"))
    assert isinstance(serve_app(on), FastScoring)
    assert not isinstance(serve_app(off), FastScoring)
    for name in fast:
        assert fast[name] == plain[name], name
    # the caller's correlation id comes back, in the header and in an error's body
    assert all(answer[1] for answer in fast.values())
    assert all(answer[2] for answer in fast.values() if answer[0] >= 400)
    # the cases cover what they are named for
    status = {name: answer[0] for name, answer in fast.items()}
    assert status["five fields"] == status["every field"] == 201
    assert status["a repeat"] == 200
    assert fast["a repeat"][3]["x-idempotent-replay"] == "true"
    assert status["the same id, another body"] == 409
    assert status["too large"] == 413
    assert status["no key"] == status["a wrong key"] == 401
    assert status["reasons asked"] == 201
    assert fast["reasons asked"][4]["reasons"]
    assert {status[n] for n in ("a negative amount", "a bad IP", "from the future")} == {422}
    assert fast["five fields"][5]["message"] == "decision"
    assert fast["a negative amount"][5]["message"] == "request failed"
    assert fast["a wrong key"][5]["error"] == "NotAuthorizedException"
