"""Fixtures of the notification tests: route files, sinks' shared parts (the receivers are in
tests/conftest.py, for the other layers too)."""

from __future__ import annotations

import textwrap

import pytest

from progressistad.alerts import routes


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
