"""The interactive API docs at /docs, working with no internet access.

Litestar's Swagger UI page loads Swagger UI from a public CDN by default: offline, the page is
blank. Here the page gets the URLs of the package's vendored copy (fraudsvc/static/swagger-ui,
where its README says where the files come from and how to refresh them), which the app serves
itself, outside the API-key guard and the OpenAPI schema.

The files are served under a path holding their version, so browsers may keep them for a year
without asking again (`immutable`): a new version is a new URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from litestar import Router
from litestar.datastructures import CacheControlHeader
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.static_files import create_static_files_router

ASSETS = Path(__file__).resolve().parents[1] / "static" / "swagger-ui"
ONE_YEAR = 365 * 24 * 3600


@dataclass(frozen=True)
class SwaggerAssets:
    """Where the vendored Swagger UI lies on disk, and where the app serves it."""

    directory: Path
    version: str

    @classmethod
    def vendored(cls, directory: Path = ASSETS) -> SwaggerAssets:
        return cls(directory, (directory / "VERSION").read_text(encoding="utf-8").strip())

    @property
    def prefix(self) -> str:
        return f"/static/swagger-ui/{self.version}"

    def url(self, name: str) -> str:
        return f"{self.prefix}/{name}"


def static_router(assets: SwaggerAssets) -> Router:
    """Swagger UI's files, cacheable for a year, unguarded and absent from the schema."""
    return create_static_files_router(
        path=assets.prefix,
        directories=[assets.directory],
        name="swagger-ui",
        cache_control=CacheControlHeader(public=True, max_age=ONE_YEAR, immutable=True),
        include_in_schema=False,
    )


def render_plugin(assets: SwaggerAssets) -> SwaggerRenderPlugin:
    """Litestar's Swagger UI page (at the docs root) with every asset taken from the app."""
    favicon = assets.url("favicon-32x32.png")
    return SwaggerRenderPlugin(
        js_url=assets.url("swagger-ui-bundle.js"),
        css_url=assets.url("swagger-ui.css"),
        standalone_preset_js_url=assets.url("swagger-ui-standalone-preset.js"),
        favicon=f'<link rel="icon" type="image/png" href="{favicon}">',
        path="/",
    )
