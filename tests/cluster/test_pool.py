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


def test_the_default_bound_leaves_most_of_the_descriptor_reserve(redis_server, redis_prefix):
    from progressistad.cluster.group import Cluster
    from progressistad.daemon.descriptors import RESERVED_MIN

    async def bounds():
        cluster = Cluster(redis_server.url, redis_prefix)
        try:
            return [client.connection_pool.max_connections for client in
                    (cluster.backend.client, cluster.reader.client, cluster.pinger)]
        finally:
            await cluster.close()

    writer, reader, probe = asyncio.run(bounds())
    assert writer == MAX_CONNECTIONS and reader == probe == 1
    # The group's writer, its stream reader and the probe stay within half the smallest reserve.
    assert writer + reader + probe <= RESERVED_MIN // 2


WAVES = 2
WAVE_SECONDS = 2.0
"""Longer than a probe waits for its ping (PROBE_TIMEOUT), shorter than a socket read
(SOCKET_TIMEOUT, which is also how long a call waits for a connection)."""


def test_a_full_pool_with_redis_answering_leaves_the_link_up(redis_server, redis_prefix):
    from progressistad.cluster.group import Cluster
    from progressistad.cluster.link import SOCKET_TIMEOUT
    from progressistad.cluster.probe import PROBE_TIMEOUT
    from progressistad.core.store import SweepPolicy
    from progressistad.service import StoreUnavailable

    assert PROBE_TIMEOUT < WAVE_SECONDS < SOCKET_TIMEOUT < WAVES * WAVE_SECONDS

    async def scenario():
        cluster = Cluster(redis_server.url, redis_prefix)
        service = cluster.build_service(SweepPolicy(), 5.0)
        client = cluster.backend.client
        try:
            # Waves of calls that keep every connection of the daemon's client busy, each call
            # longer than a probe waits, all of them longer than a call waits for a connection;
            # a read queued behind them.
            held = asyncio.gather(*(client.blpop([f"{redis_prefix}empty"], timeout=WAVE_SECONDS)
                                    for _ in range(WAVES * MAX_CONNECTIONS)))
            read = asyncio.gather(service.get("t0"), return_exceptions=True)
            await asyncio.sleep(0.3)
            await cluster.probe.check()
            assert cluster.link.ok, cluster.link.problem()  # Redis answers: the probe says so
            [refused] = await read
            assert isinstance(refused, StoreUnavailable) and "busy" in str(refused), refused
            assert cluster.link.ok, cluster.link.problem()  # a 503 for that call alone
            assert await held == [None] * (WAVES * MAX_CONNECTIONS)
            assert await service.get("t0") is None  # the pool serves again
        finally:
            await cluster.close()
    asyncio.run(scenario())
