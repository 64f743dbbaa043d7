"""/docs in a real browser with the network limited to the app: Swagger UI renders and lists
the API's operations (before Swagger UI was vendored, this page was blank offline)."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.browser.browsing import Browsed, save_screenshot

pytestmark = pytest.mark.slow


async def test_docs_render_swagger_ui_with_the_operations_listed(browsed: Browsed) -> None:
    await browsed.open("/docs")
    page = browsed.page
    await expect(page.locator(".swagger-ui .info .title")).to_contain_text("fraudsvc")
    for summary in ("Score a transaction", "Read a stored transaction"):
        await expect(page.get_by_text(summary, exact=True)).to_be_visible()
    await expect(
        page.locator(".opblock-summary-path", has_text="/v1/transactions")
    ).not_to_have_count(0)
    await save_screenshot(page, "docs")
    loaded = {url.rsplit("/", 1)[1] for url in browsed.requests}
    assert {"swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-ui.css"} <= loaded


async def test_an_operation_opens_with_its_schema(browsed: Browsed) -> None:
    await browsed.open("/docs")
    page = browsed.page
    await page.get_by_text("Score a transaction", exact=True).click()
    operation = page.locator(".opblock.is-open")
    await expect(operation).to_have_count(1)
    await expect(operation.get_by_text("transaction_id").first).to_be_visible()
    await expect(operation.get_by_role("button", name="Try it out")).to_be_visible()
