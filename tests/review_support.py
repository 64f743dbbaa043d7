"""What the review pages' tests share: a signed-in analyst's client, the CSRF token of a page,
review cases made by a live rule, and analysts made in the running service's database."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from fraudsvc.db import analysts
from fraudsvc.demo_review import form_token
from fraudsvc.review import auth
from tests.service import ADMIN_KEY
from tests.service import transaction as tx

PASSWORD = "correct horse battery staple"
REVIEW_RULES = {
    "description": "sends payments above 500 to review",
    "rules": [{"id": "review_large", "expression": "amount > 500", "action": "review"}],
}


def csrf_of(html: str) -> str:
    return form_token(html)


async def new_analyst(prefix: str = "analyst") -> str:
    """An account made in the database the running service uses (its pool is open)."""
    name = f"{prefix}-{secrets.token_hex(3)}"
    hashed = await asyncio.to_thread(auth.hash_password, PASSWORD)
    assert await analysts.create(name, hashed, "test")
    return name


async def sign_in(base_url: str, name: str, password: str = PASSWORD) -> httpx.Response:
    """One attempt through the form (its CSRF token and cookie) in a fresh client."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        form = await client.get("/review/sign-in")
        return await client.post(
            "/review/sign-in",
            data={"name": name, "password": password, "csrf_token": csrf_of(form.text)},
        )


@asynccontextmanager
async def signed_in(base_url: str, name: str) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client holding an analyst's session cookie (and no API key)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        form = await client.get("/review/sign-in")
        response = await client.post(
            "/review/sign-in",
            data={"name": name, "password": PASSWORD, "csrf_token": csrf_of(form.text)},
        )
        assert response.status_code == 303, response.text
        assert response.headers["location"] == "/review"
        yield client


async def publish_review_rule(api: httpx.AsyncClient) -> None:
    admin = {"X-API-Key": ADMIN_KEY}
    version = (await api.post("/v1/rulesets", json=REVIEW_RULES, headers=admin)).json()
    published = await api.post(f"/v1/rulesets/{version['version']}/publish", headers=admin)
    assert published.status_code == 200, published.text


async def review_case(api: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    """Score payments of 900 until the live rule sends one to review (the process follows a
    published ruleset within a second); the prediction of the one that opened a case."""
    scored: dict[str, Any] = {}
    for _ in range(50):
        response = await api.post("/v1/transactions", json=tx(**{"amount": 900, **fields}))
        scored = response.json()
        if scored.get("decision") == "review":
            return scored
        await asyncio.sleep(0.2)
    raise AssertionError(f"no review decision: {scored}")
