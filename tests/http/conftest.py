"""The application in-process on a real socket (pytest-tornado), with a fake clock for tasks."""

from __future__ import annotations

import json
from typing import Any, Mapping, Optional

import pytest
import tornado.httpclient

from progressistad.daemon import wiring
from progressistad.daemon.config import Settings
from progressistad.web.app import make_app
from progressistad.web.server import make_server

T0 = 1_700_000_000.0


class FakeClock:
    """Epoch seconds that move only when a test says so."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def settings(request):
    """Settings for the app; override with `@pytest.mark.settings(name=value, ...)`."""
    marker = request.node.get_closest_marker("settings")
    overrides = dict(marker.kwargs) if marker else {}
    overrides.setdefault("broadcast_interval", 0.02)
    return Settings(**overrides)


@pytest.fixture(params=["memory", "redis"], autouse=True)
def store_kind(request):
    """Every HTTP test runs on the in-memory store and on Redis: both meet the same contract.

    Autouse, because pytest-tornado asks for `app` dynamically, which parametrizes nothing.
    """
    return request.param


@pytest.fixture
def services(request, store_kind, settings, clock, io_loop):
    """The daemon's services, wired as the daemon wires them, on the store `store_kind` names."""
    if store_kind == "redis":
        pytest.importorskip("redis")
        server = request.getfixturevalue("redis_server")
        settings = settings.replace(redis_url=server.url,
                                    redis_prefix=request.getfixturevalue("redis_prefix"))
    built = io_loop.run_sync(lambda: wiring.build(settings, clock))
    yield built
    io_loop.run_sync(built.close)


@pytest.fixture
def ctx(services):
    return services.ctx


@pytest.fixture
def app(ctx):
    return make_app(ctx)


@pytest.fixture
def http_server(request, io_loop, _unused_port, app, ctx):
    """pytest-tornado's server fixture, with the daemon's own server class and limits."""
    settings = ctx.settings
    server = make_server(app, settings, settings.max_connections or 1000, ctx.metrics.connections)
    server.add_sockets([_unused_port[0]])
    yield server
    server.stop()
    io_loop.run_sync(server.close_all_connections, timeout=request.config.option.async_test_timeout)


class Api:
    """Small HTTP helper: `await api.call(method, path, body, headers)` -> (status, headers, body)."""

    def __init__(self, client: tornado.httpclient.AsyncHTTPClient, base_url: str) -> None:
        self.client = client
        self.base_url = base_url
        self.ws_url = base_url.replace("http://", "ws://", 1)

    async def call(self, method: str, path: str, body: Any = None,
                   headers: Optional[Mapping[str, str]] = None, raw: Optional[bytes] = None):
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        if data is None and method in ("POST", "PUT", "PATCH"):
            data = b""
        response = await self.client.fetch(
            self.base_url + path, method=method, body=data, headers=dict(headers or {}),
            raise_error=False, follow_redirects=False, allow_nonstandard_methods=True,
        )
        text = response.body.decode("utf-8", "replace") if response.body else ""
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = text
        return response.code, response.headers, parsed

    async def post(self, body: Any, **kwargs):
        return await self.call("POST", "/progress", body, **kwargs)


@pytest.fixture
def api(http_client, base_url):
    return Api(http_client, base_url)


def pytest_configure(config):
    config.addinivalue_line("markers", "settings(**kwargs): Settings overrides for the app fixture")
