"""The dashboard's files as the daemon serves them (plain HTTP, no browser needed)."""

from __future__ import annotations

import re

import pytest

from tests.support import REPO

pytestmark = pytest.mark.integration

STATIC = REPO / "static"


def referenced_files(html: str):
    return re.findall(r'(?:src|href)="([^":#?]+)"', html)


def test_every_file_the_page_references_is_served_with_headers(daemon):
    status, headers, html = daemon.request("GET", "/static/index.html")
    assert status == 200
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp
    assert headers["Cache-Control"] == "no-cache"
    names = referenced_files(html)
    assert {"main.js", "dashboard.css", "favicon.svg"} <= set(names)
    for js in STATIC.glob("*.js"):
        names.append(js.name)
    for name in names:
        status, headers, _ = daemon.request("GET", "/static/" + name)
        assert status == 200, name
        assert headers["Cache-Control"] == "no-cache", name
        if name.endswith(".js"):
            assert "javascript" in headers["Content-Type"], (name, headers["Content-Type"])


def test_favicon_is_served_at_the_root(daemon):
    status, headers, _ = daemon.request("GET", "/favicon.ico")
    assert status == 200
    assert headers["Content-Type"] in ("image/x-icon", "image/vnd.microsoft.icon")


def test_page_has_no_inline_script_or_style():
    """The CSP forbids them: anything inline would silently not run."""
    for path in STATIC.glob("*.html"):
        html = path.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), path
        assert "<style" not in html and " style=" not in html and "javascript:" not in html, path
        assert not re.search(r"\son[a-z]+=", html), f"inline event handler in {path}"
    for path in STATIC.glob("*.js"):
        source = path.read_text()
        assert "innerHTML" not in source and "insertAdjacentHTML" not in source, path
        assert "http://" not in source and "https://" not in source, f"{path} loads from elsewhere"


def test_page_preloads_every_module():
    """The modules load side by side instead of one import level after another."""
    html = (STATIC / "index.html").read_text()
    preloaded = set(re.findall(r'<link rel="modulepreload" href="([^"]+)">', html))
    modules = {path.name for path in STATIC.glob("*.js")} - {"main.js"} | {"contract.js"}
    assert preloaded == modules
