"""The Redis client's connections are bounded: a burst of concurrent calls waits for one of
`MAX_CONNECTIONS` connections instead of opening one each, against a real redis-server."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("redis")

from progressistad.cluster.store import MAX_CONNECTIONS, UNAVAILABLE_ERRORS, connect
MAX_CONNECTIONS = 16  # noqa: E402

CALLS = 40
HOLD_SECONDS = 0.2
"""How long each call holds its connection (a BLPOP on a key nobody pushes to)."""


async def connected_clients(watcher) -> int:
    return int((await watcher.info("clients"))["connected_clients"])


def burst(url: str, prefix: str, bound: int, socket_timeout: float = 10.0):
    """(peak of extra connections Redis saw, replies) for CALLS concurrent blocking calls."""
    async def scenario():
        watcher = connect(url, 5.0)
        client = connect(url, socket_timeout, max_connections=bound)
        try:
            baseline = await connected_clients(watcher)
            calls = asyncio.gather(*(client.blpop([f"{prefix}empty"], timeout=HOLD_SECONDS)
                                     for _ in range(CALLS)), return_exceptions=True)
            task = asyncio.ensure_future(calls)
            peak = 0
            while not task.done():
                peak = max(peak, await connected_clients(watcher) - baseline)
                await asyncio.sleep(0.02)
            return peak, task.result()
        finally:
            await client.aclose() if hasattr(client, "aclose") else await client.close()
            await watcher.aclose() if hasattr(watcher, "aclose") else await watcher.close()
    return asyncio.run(scenario())


def test_a_burst_of_calls_opens_no_more_than_the_bound(redis_server, redis_prefix):
    peak, replies = burst(redis_server.url, redis_prefix, 4)
    assert 1 <= peak <= 4
    assert replies == [None] * CALLS  # every call waited its turn and was answered


def test_a_call_that_cannot_get_a_connection_in_time_fails_as_unavailable(redis_server, redis_prefix):
    # Each call holds its connection longer than the next one may wait for it.
    _, replies = burst(redis_server.url, redis_prefix, 1, socket_timeout=HOLD_SECONDS * 3)
    failed = [reply for reply in replies if isinstance(reply, Exception)]
    assert failed and all(isinstance(reply, UNAVAILABLE_ERRORS) for reply in failed)


def test_the_default_bound_leaves_most_of_the_descriptor_reserve():
    from progressistad.daemon.descriptors import RESERVED_MIN

    # The group's writer and reader clients together stay within half the smallest reserve.
    assert 2 * MAX_CONNECTIONS <= RESERVED_MIN // 2
