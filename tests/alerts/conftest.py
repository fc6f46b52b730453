"""Fixtures of the notification tests: real receivers, route files, a fast retry policy."""

from __future__ import annotations

import textwrap

import pytest

from progressistad.alerts import routes


@pytest.fixture
def receiver():
    from tests.alerts.receivers import HttpReceiver

    server = HttpReceiver().start()
    yield server
    server.stop()


@pytest.fixture
def smtp_server():
    pytest.importorskip("aiosmtpd")
    from tests.alerts.receivers import SmtpReceiver

    server = SmtpReceiver().start()
    yield server
    server.stop()


@pytest.fixture
def route_file(tmp_path):
    """`route_file(text)` writes a route file and returns its path."""
    def write(text: str, name: str = "notify.conf") -> str:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return str(path)
    return write


@pytest.fixture
def config(route_file):
    """`config(text)` parses a route file."""
    def parse(text: str, env=None) -> routes.RouteConfig:
        return routes.load(route_file(text), env or {})
    return parse



@pytest.fixture
def out(io_loop):
    """What sinks share (HTTP client, worker threads), built on the test's loop."""
    from tests.alerts.helpers import outbound

    shared = outbound()
    yield shared
    shared.http.close()
    shared.executor.shutdown()
