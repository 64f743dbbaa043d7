"""The review pages in a real browser with the network limited to the app: an analyst signs in,
sees the queue, opens and claims a case with its explanation drawn, confirms fraud and lands on
the next case; the label is visible through the API and the case has left the queue. Markup in
a payment's attributes is shown as text and runs nothing. Screenshots of the sign-in form, the
queue and the case go to data/reports/screenshots/."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Dialog, expect

from fraudsvc.settings import Settings
from tests.browser.browsing import Browsed, save_screenshot
from tests.review_support import PASSWORD, new_analyst, publish_review_rule, review_case
from tests.service import API_KEY, FAST_LIME, running_service, service_env
from tests.service import transaction as tx

pytestmark = pytest.mark.slow
SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'


@pytest.fixture(scope="module")
def served_settings(
    tmp_path_factory: pytest.TempPathFactory, database_url: str, registry_dir: Path
) -> Settings:
    return Settings.from_env(service_env(registry_dir, database_url, **FAST_LIME))


@pytest.fixture(scope="module")
async def app(served_settings: Settings, database_url: str) -> AsyncIterator[str]:
    """The service with a model and its worker (so that cases carry LIME explanations)."""
    async with running_service(served_settings, with_worker=True) as client:
        await publish_review_rule(client)
        yield str(client.base_url).rstrip("/")
    import asyncpg

    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute("DELETE FROM ruleset_live")
    finally:
        await connection.close()


async def explained(api: httpx.AsyncClient, transaction_id: str) -> None:
    """Wait for the worker's LIME explanation of a flagged payment."""
    for _ in range(300):
        response = await api.get(f"/v1/transactions/{transaction_id}/explanation")
        if response.status_code == 200:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"no explanation for {transaction_id}: {response.text}")


async def test_an_analyst_works_a_case_to_a_verdict_in_the_browser(
    browsed: Browsed, app: str
) -> None:
    page = browsed.page
    dialogs: list[str] = []

    async def refuse(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        await dialog.dismiss()

    page.on("dialog", refuse)
    async with httpx.AsyncClient(base_url=app, headers={"X-API-Key": API_KEY}) as api:
        # the customer's history: two earlier payments at the same terminal, one labelled
        customer, terminal = f"C-{secrets.token_hex(4)}", f"T-{secrets.token_hex(4)}"
        for i, amount in enumerate((12.5, 40.0)):
            earlier = tx(
                customer_id=customer,
                terminal_id=terminal,
                amount=amount,
                timestamp=f"2026-03-02T0{8 + i}:00:00Z",
            )
            assert (await api.post("/v1/transactions", json=earlier)).status_code == 201
        labelled = await api.post(
            f"/v1/transactions/{earlier['transaction_id']}/label",
            json={"is_fraud": 0, "source": "chargeback"},
        )
        assert labelled.status_code == 201, labelled.text
        first = await review_case(
            api,
            customer_id=customer,
            terminal_id=terminal,
            attributes={"merchant_name": SCRIPT, "memo": IMG},
            channel="ecommerce",
            merchant_category="5411",
            merchant_country="FR",
            card_country="DE",
        )
        second = await review_case(api)
        for case in (first, second):
            await explained(api, case["transaction_id"])
        name = await new_analyst("alice")

        await browsed.open("/review")  # not signed in: sent to the form
        await expect(page.get_by_role("heading", name="Analyst sign-in")).to_be_visible()
        await save_screenshot(page, "review-sign-in")
        await page.get_by_label("Name").fill(name)
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Sign in").click()

        await expect(page.get_by_role("heading", name="Review queue")).to_be_visible()
        tid = first["transaction_id"]
        row = page.locator("tr", has=page.get_by_role("link", name=tid, exact=True))
        await expect(row).to_contain_text(SCRIPT)  # shown as text
        await save_screenshot(page, "review-queue")

        await page.get_by_role("link", name=tid, exact=True).click()
        await expect(page.get_by_role("heading", name=f"Case {tid}")).to_be_visible()
        await page.get_by_role("button", name="Claim this case").click()
        await expect(page.get_by_text("You hold this case")).to_be_visible()
        await expect(page.get_by_text(SCRIPT, exact=True)).to_be_visible()
        await expect(page.get_by_text(IMG, exact=True)).to_be_visible()
        await expect(page.locator("svg.chart")).to_have_count(2)  # contributions and LIME
        await expect(page.get_by_text("Local fit R²")).to_be_visible()
        await expect(page.get_by_text(earlier["transaction_id"])).to_have_count(2)  # both lists
        await save_screenshot(page, "review-case")

        await page.get_by_label("Confirm fraud").check()
        await page.get_by_label("Note").fill("card testing, confirmed")
        await page.get_by_role("button", name="Record verdict").click()
        await expect(page.get_by_text("Verdict recorded")).to_be_visible()
        assert f"/review/{tid}" not in page.url  # the next case opened

        label = (await api.get(f"/v1/transactions/{tid}")).json()["label"]
        assert (label["is_fraud"], label["source"]) == (True, "analyst")
        await browsed.open("/review")
        await expect(page.get_by_role("link", name=tid, exact=True)).to_have_count(0)
    assert dialogs == []  # no script ran
    assert all(url.startswith(app) for url in browsed.requests)


async def test_a_second_analyst_cannot_take_a_claimed_case(
    browser: Browser, browsed: Browsed, app: str
) -> None:
    async with httpx.AsyncClient(base_url=app, headers={"X-API-Key": API_KEY}) as api:
        tid = (await review_case(api))["transaction_id"]
    first, second = await new_analyst("first"), await new_analyst("second")
    other = await browser.new_context()
    try:
        pages = [browsed.page, await other.new_page()]
        for page, name in zip(pages, (first, second), strict=True):
            await page.goto(f"{app}/review/sign-in")
            await page.get_by_label("Name").fill(name)
            await page.get_by_label("Password").fill(PASSWORD)
            await page.get_by_role("button", name="Sign in").click()
            await expect(page.get_by_role("heading", name="Review queue")).to_be_visible()
            await page.goto(f"{app}/review/{tid}")
        one, two = pages
        await one.get_by_role("button", name="Claim this case").click()
        await expect(one.get_by_text("You hold this case")).to_be_visible()
        await two.get_by_role("button", name="Claim this case").click()  # a stale page
        await expect(two.get_by_text("Another analyst holds this case")).to_be_visible()
        await expect(two.get_by_text(f"Held by {first}")).to_be_visible()
        await expect(two.get_by_role("button", name="Record verdict")).to_have_count(0)
    finally:
        await other.close()
