"""A real browser for the tests: Debian's Chromium driven by Playwright's async API, on the
test run's own event loop (pytest-asyncio's session loop), against the real service.

- `browser` (session): headless Chromium from FRAUDSVC_TEST_CHROMIUM, default /usr/bin/chromium,
  with `--no-sandbox` as root. Playwright's own browser downloads (`playwright install`) are
  never used. Without Chromium the browser tests skip and name the Debian package to install.
- `served_settings` (module): the settings of the service the pages come from; a test module
  overrides it for another configuration (the default serves no model, which pages that only
  document the API do not need).
- `app` (module): that service under uvicorn on a loopback port, with the real lifespan,
  PostgreSQL and Redis; its base URL.
- `browsed` (per test): a fresh browser context and page whose every request is recorded.
  Requests to any origin other than the app's are refused before they leave, and the test
  fails if a page asked for one, or raised an uncaught script error.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, Route, async_playwright

from fraudsvc.settings import Settings
from tests.browser.browsing import CHROMIUM, MISSING, Browsed, chromium_args, origin
from tests.service import running_service, service_env


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(MISSING)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=chromium_args()
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture(scope="module")
def served_settings(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Settings:
    return Settings.from_env(service_env(tmp_path_factory.mktemp("browser-data"), database_url))


@pytest.fixture(scope="module")
async def app(served_settings: Settings) -> AsyncIterator[str]:
    async with running_service(served_settings) as client:
        yield str(client.base_url).rstrip("/")


@pytest.fixture
async def browsed(browser: Browser, app: str) -> AsyncIterator[Browsed]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    seen = Browsed(page=await context.new_page(), base_url=app)

    async def only_the_app(route: Route) -> None:
        url = route.request.url
        seen.requests.append(url)
        if origin(url) == app:
            await route.continue_()
        else:
            seen.refused.append(url)
            await route.abort("blockedbyclient")

    await context.route("**/*", only_the_app)
    seen.page.on("pageerror", lambda error: seen.errors.append(str(error)))
    try:
        yield seen
    finally:
        await context.close()
    assert not seen.refused, f"the page asked for other hosts: {seen.refused}"
    assert not seen.errors, f"the page raised script errors: {seen.errors}"
