"""Fixtures shared by every test layer."""

from __future__ import annotations

import pytest

from tests.support import DaemonProcess


@pytest.fixture
def daemon_factory(tmp_path):
    """Start real daemons: `daemon_factory(args, env)`; all are killed at teardown."""
    started = []

    def start(args=(), env=None, **kwargs):
        proc = DaemonProcess(args, env, **kwargs)
        started.append(proc)
        return proc.start()

    yield start
    for proc in started:
        proc.__exit__(None, None, None)


@pytest.fixture
def daemon(daemon_factory):
    """One real daemon with default settings on a free loopback port."""
    return daemon_factory()


@pytest.fixture(scope="session")
def redis_server():
    """One real redis-server for the session; tests keep apart by key prefix (`redis_prefix`)."""
    from tests.redis_server import RedisServer

    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def redis_prefix(request):
    """A key prefix no other test uses."""
    import uuid

    return f"test-{uuid.uuid4().hex[:12]}:"
