"""Backends of the history for the tests: an SQLite file, SQLite in memory, a real redis-server."""

from __future__ import annotations

import asyncio

import pytest

from tests.history.helpers import T0


class Clock:
    def __init__(self, now: float = T0 + 1000) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture(params=["sqlite", "memory", "redis"])
def backend_kind(request):
    return request.param


@pytest.fixture
def open_backend(request, backend_kind, tmp_path, clock):
    """`open_backend(**options)`, called inside the test's event loop; closed by `run`."""

    def factory(**options):
        options.setdefault("clock", clock)
        if backend_kind == "redis":
            pytest.importorskip("redis")
            from progressistad.cluster.store import connect
            from progressistad.history.redis import RedisHistory

            server = request.getfixturevalue("redis_server")
            prefix = request.getfixturevalue("redis_prefix")
            return RedisHistory(connect(server.url, 5.0), prefix, **options)
        from progressistad.history.sqlite import SQLiteHistory

        path = str(tmp_path / "history.sqlite3") if backend_kind == "sqlite" else None
        return SQLiteHistory(path, **options)

    return factory


async def shut(backend) -> None:
    """Close a backend, and its Redis client if it has one."""
    assert await backend.close()
    client = getattr(backend, "client", None)
    if client is not None:
        closer = getattr(client, "aclose", None) or client.close
        await closer()


def run(coroutine):
    return asyncio.run(coroutine)
