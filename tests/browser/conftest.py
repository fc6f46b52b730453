"""Headless Chromium (Debian's package) driven by Playwright against the real daemon.

One browser for the package; each test gets fresh contexts whose every request
is checked to stay on 127.0.0.1 and whose console errors fail the test.
"""

from __future__ import annotations

import re
from typing import Iterator, List, Optional, Sequence
from urllib.parse import urlsplit

import pytest

from tests.support import IN_CI, require_tool

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
LOCAL_HOSTS = {"127.0.0.1"}
ACTION_TIMEOUT_MS = 10_000


@pytest.fixture(scope="package")
def chromium():
    """The headless Chromium shared by this package; skipped (failed under CI=true) when missing.

    Package scope, not session: Playwright's sync API keeps an asyncio loop running
    while it is open, which pytest-tornado's tests in later packages cannot share.
    """
    executable = require_tool("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if IN_CI:
            pytest.fail("the playwright Python package is not installed (requirements/test.txt)")
        pytest.skip("the playwright Python package is not installed")
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Dashboards:
    """Opens dashboard pages and records what they ask for and what they complain about."""

    def __init__(self, browser) -> None:
        self.browser = browser
        self.contexts: List = []
        self.requests: List[str] = []
        self.foreign: List[str] = []
        self.errors: List[str] = []
        self.allowed_errors: List[re.Pattern] = []

    def allow_errors(self, *patterns: str) -> None:
        """Console errors matching these are expected (e.g. the browser's own line for a refused socket)."""
        self.allowed_errors.extend(re.compile(p) for p in patterns)

    def new_context(self, **options):
        context = self.browser.new_context(**options)
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        context.route("**/*", self._route)
        self.contexts.append(context)
        return context

    def open(self, url: str, context=None, wait_connected: bool = True, **options):
        """A page on `url` with every request and console message watched."""
        context = context or self.new_context(**options)
        page = context.new_page()
        page.on("console", lambda message: self._console(message))
        page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))
        page.on("websocket", lambda socket: self._record(socket.url))
        page.on("dialog", lambda dialog: (self.errors.append(f"dialog: {dialog.message}"), dialog.dismiss()))
        page.goto(url)
        if wait_connected:
            wait_connection(page, "connected")
        return page

    def _route(self, route) -> None:
        url = route.request.url
        self._record(url)
        if urlsplit(url).hostname in LOCAL_HOSTS or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            route.abort()

    def _record(self, url: str) -> None:
        self.requests.append(url)
        if not url.startswith(("data:", "blob:")) and urlsplit(url).hostname not in LOCAL_HOSTS:
            self.foreign.append(url)

    def _console(self, message) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text}")

    def unexpected_errors(self) -> List[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.allowed_errors)]

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def dashboards(chromium) -> Iterator[Dashboards]:
    """Pages on the shared browser; the test fails if any left 127.0.0.1 or logged an error."""
    opened = Dashboards(chromium)
    yield opened
    opened.close()
    assert opened.foreign == [], f"requests left 127.0.0.1: {opened.foreign}"
    assert opened.unexpected_errors() == [], f"console errors: {opened.unexpected_errors()}"


def wait_connection(page, state: str, timeout: float = 10.0) -> None:
    page.wait_for_function(
        "state => document.getElementById('connection').dataset.state === state", arg=state,
        timeout=timeout * 1000,
    )


FAKE_SOCKETS = """
  const { LiveConnection, backoffDelay } = await import(new URL('connection.js', location.href).href);
  const sockets = [];
  class FakeSocket {
    constructor(url) { this.url = url; this.closedWith = null; sockets.push(this); }
    close(code) { this.closedWith = code; }
  }
  const real = window.WebSocket;
  window.WebSocket = FakeSocket;
  const send = (socket, message) => socket.onmessage({ data: JSON.stringify(message) });
"""
"""Opens a page script: connection.js's LiveConnection on fake sockets (`sockets`), `send` a
message to one; the script puts `window.WebSocket = real` back when done."""


READ_ROWS = """
() => [...document.querySelectorAll('li.task')].map(li => {
  const text = (name) => li.querySelector(name).textContent;
  const bar = li.querySelector('[role=progressbar]');
  const section = li.closest('section.bucket');
  return {
    id: li.dataset.taskId, status: text('.status'), desc: text('.desc'),
    bucket: section ? section.id.replace('bucket-', '') : null,
    visible: li.getClientRects().length > 0,
    amount: text('.stat-amount'), percent: text('.stat-percent'), rate: text('.stat-rate'),
    eta: text('.stat-eta'), elapsed: text('.stat-elapsed'), age: text('.stat-age'),
    valuenow: bar.getAttribute('aria-valuenow'), indeterminate: bar.classList.contains('indeterminate'),
  };
})
"""


def rows(page) -> dict:
    """Every rendered task row by id: bucket, texts, aria values."""
    return {row["id"]: row for row in page.evaluate(READ_ROWS)}


def wait_rows(page, predicate, timeout: float = 10.0, message: str = "rows") -> dict:
    """Poll the page's rows until `predicate(rows)` holds."""
    from tests.support import wait_for

    last: dict = {}

    def check():
        nonlocal last
        last = rows(page)
        return predicate(last)

    try:
        wait_for(check, timeout=timeout, interval=0.05, message=message)
    except AssertionError as error:
        raise AssertionError(f"{error}; rows were {last}") from None
    return last


def visible_ids(page, bucket: Optional[str] = None) -> Sequence[str]:
    return [r["id"] for r in page.evaluate(READ_ROWS)
            if r["visible"] and (bucket is None or r["bucket"] == bucket)]


def assert_fits_width(page) -> None:
    """No horizontal scroll, and no element reaching past the viewport's right edge."""
    widths = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert widths[0] <= widths[1], f"page is {widths[0]}px wide in a {widths[1]}px viewport"
    overflowing = page.evaluate(
        "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > "
        "document.documentElement.clientWidth + 1).map(e => e.tagName + '.' + e.className)")
    assert overflowing == []
