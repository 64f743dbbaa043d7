"""What the browser tests share besides fixtures: where Chromium is, how it is started, a page
with its network log, and where screenshots go."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from playwright.async_api import Page

CHROMIUM = Path(os.environ.get("FRAUDSVC_TEST_CHROMIUM", "/usr/bin/chromium"))
MISSING = (
    f"no Chromium at {CHROMIUM}: install the Debian package (apt-get install chromium) "
    "or set FRAUDSVC_TEST_CHROMIUM"
)
SCREENSHOTS = Path(__file__).resolve().parents[2] / "data" / "reports" / "screenshots"


def chromium_args() -> list[str]:
    # no update checks, field trials or other traffic of the browser's own
    args = ["--disable-background-networking", "--disable-component-update", "--no-first-run"]
    if os.geteuid() == 0:
        args.append("--no-sandbox")  # Chromium's sandbox refuses to run as root
    return args


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass
class Browsed:
    """A page of the app and what it asked the network for."""

    page: Page
    base_url: str
    requests: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    async def open(self, path: str) -> None:
        response = await self.page.goto(self.base_url + path)
        assert response is not None, path
        assert response.ok, f"{path}: {response.status}"


async def save_screenshot(page: Page, name: str) -> Path:
    """A full-page PNG under data/reports/screenshots/ (gitignored), to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=path, full_page=True)
    return path
