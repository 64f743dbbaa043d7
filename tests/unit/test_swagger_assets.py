"""The vendored Swagger UI is what its notes say: the registry's files, unmodified and complete,
and the page is told to load them from the app."""

from __future__ import annotations

import hashlib
import re

from fraudsvc.api.swagger import SwaggerAssets, render_plugin

NOTES = {"README.md", "VERSION", "SHA256SUMS"}
PAGE_ASSETS = {
    "swagger-ui-bundle.js",
    "swagger-ui-standalone-preset.js",
    "swagger-ui.css",
    "favicon-32x32.png",
}


def _sums(assets: SwaggerAssets) -> dict[str, str]:
    lines = (assets.directory / "SHA256SUMS").read_text(encoding="utf-8").splitlines()
    return {name: digest for digest, name in (line.split("  ", 1) for line in lines if line)}


def test_every_vendored_file_is_listed_with_its_checksum_and_matches_it() -> None:
    assets = SwaggerAssets.vendored()
    sums = _sums(assets)
    present = {p.name for p in assets.directory.iterdir() if p.is_file()} - NOTES
    assert present == set(sums), "SHA256SUMS and the folder disagree"
    for name, digest in sums.items():
        actual = hashlib.sha256((assets.directory / name).read_bytes()).hexdigest()
        assert actual == digest, f"{name} differs from the file the registry served"


def test_the_licences_travel_with_the_files_and_the_notes_name_the_version() -> None:
    assets = SwaggerAssets.vendored()
    assert re.fullmatch(r"\d+\.\d+\.\d+", assets.version)
    names = set(_sums(assets))
    assert PAGE_ASSETS | {"LICENSE", "NOTICE"} <= names
    assert "Apache License" in (assets.directory / "LICENSE").read_text(encoding="utf-8")
    readme = (assets.directory / "README.md").read_text(encoding="utf-8")
    assert f"swagger-ui-dist-{assets.version}.tgz" in readme


def test_the_docs_page_takes_every_asset_from_the_app() -> None:
    assets = SwaggerAssets.vendored()
    plugin = render_plugin(assets)
    urls = [plugin.js_url, plugin.css_url, plugin.standalone_preset_js_url]
    favicon = re.search(r'href="([^"]+)"', plugin.favicon)
    assert favicon is not None
    for url in [*urls, favicon.group(1)]:
        assert url.startswith(f"/static/swagger-ui/{assets.version}/"), url
        assert (assets.directory / url.rsplit("/", 1)[1]).is_file(), url
