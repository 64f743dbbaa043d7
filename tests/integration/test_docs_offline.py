"""/docs works with no internet: every asset the page names (and every asset its stylesheet
names) is served by the app itself, needs no key, is cached, and stays out of the schema."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from fraudsvc.api.swagger import ONE_YEAR
from fraudsvc.settings import Settings
from tests.service import running_service, service_env

pytestmark = pytest.mark.slow

# src="...", href='...', url(...) and url("...")
REFERENCE = re.compile(
    r"""\b(?:src|href)\s*=\s*["']([^"']+)["']|\burl\(\s*(?:"([^"]*)"|'([^']*)'|([^)'"]*))\s*\)"""
)
CONTENT_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}
ANONYMOUS = {"X-API-Key": ""}


def references(text: str) -> list[str]:
    """Every src, href and url() target of an HTML page or a stylesheet, data: URIs left out
    (they are inline content, not requests)."""
    found = [next(g for g in m.groups() if g is not None) for m in REFERENCE.finditer(text)]
    return [ref.strip() for ref in found if not ref.strip().startswith("data:")]


def test_references_finds_every_form_and_skips_inline_data() -> None:
    text = (
        "<link href=\"/a.css\"><script src='/b.js'></script>"
        "x{background:url(/c.png)} y{background:url( 'd.png' )} "
        'z{background:url("data:image/svg+xml;charset=utf-8,<svg xmlns=\\"http://x\\"/>")}'
    )
    assert references(text) == ["/a.css", "/b.js", "/c.png", "d.png"]


@pytest.fixture(scope="module")
async def client(
    tmp_path_factory: pytest.TempPathFactory, database_url: str
) -> AsyncIterator[httpx.AsyncClient]:
    # no model is needed for the docs: the service starts without one
    data_dir: Path = tmp_path_factory.mktemp("docs-data")
    async with running_service(Settings.from_env(service_env(data_dir, database_url))) as client:
        yield client


async def _assets(client: httpx.AsyncClient) -> dict[str, httpx.Response]:
    """Every asset the docs page names, and the ones its stylesheets name, fetched."""
    page = await client.get("/docs", headers=ANONYMOUS)
    assert page.status_code == 200
    fetched: dict[str, httpx.Response] = {}
    pending = [urljoin(str(page.url), ref) for ref in references(page.text)]
    while pending:
        url = pending.pop()
        if url in fetched:
            continue
        assert urlsplit(url).netloc == client.base_url.host + f":{client.base_url.port}", url
        fetched[url] = response = await client.get(url, headers=ANONYMOUS)
        if "text/css" in response.headers.get("content-type", ""):
            pending += [urljoin(url, ref) for ref in references(response.text)]
    return fetched


async def test_every_asset_of_the_docs_page_is_served_by_the_app(
    client: httpx.AsyncClient,
) -> None:
    fetched = await _assets(client)
    names = {urlsplit(url).path.rsplit("/", 1)[1] for url in fetched}
    assert {"swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-ui.css"} <= names
    assert "favicon-32x32.png" in names
    for url, response in fetched.items():
        assert response.status_code == 200, url
        suffix = Path(urlsplit(url).path).suffix
        assert CONTENT_TYPES[suffix] in response.headers["content-type"], url


async def test_no_page_of_the_docs_names_another_host(client: httpx.AsyncClient) -> None:
    for path in ("/docs", "/docs/oauth2-redirect.html"):
        page = await client.get(path, headers=ANONYMOUS)
        assert page.status_code == 200, path
        for ref in references(page.text):
            assert not urlsplit(ref).netloc, f"{path} names {ref}"
            assert not ref.startswith("//"), f"{path} names {ref}"


async def test_swagger_files_are_cached_for_a_year_without_a_key(
    client: httpx.AsyncClient,
) -> None:
    fetched = await _assets(client)
    bundle = next(r for url, r in fetched.items() if url.endswith("/swagger-ui-bundle.js"))
    directives = {d.strip() for d in bundle.headers["cache-control"].split(",")}
    assert {"public", f"max-age={ONE_YEAR}", "immutable"} <= directives
    assert "etag" in bundle.headers or "last-modified" in bundle.headers


async def test_static_files_stay_out_of_the_schema_and_inside_their_folder(
    client: httpx.AsyncClient,
) -> None:
    schema = (await client.get("/docs/openapi.json", headers=ANONYMOUS)).json()
    assert not [p for p in schema["paths"] if p.startswith("/static")]
    fetched = await _assets(client)
    prefix = next(url for url in fetched if url.endswith("/swagger-ui.css")).rsplit("/", 1)[0]
    escape = await client.get(f"{prefix}/..%2F..%2F..%2Fapi%2Fswagger.py", headers=ANONYMOUS)
    assert escape.status_code == 404
    assert b"create_static_files_router" not in escape.content
