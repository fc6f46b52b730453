"""Group membership: a daemon joins the daemons sharing one Redis and leaves it.

Imported only when `--redis-url` is set. Joining waits for Redis, builds the
service (`cluster.service`) and the stream follower (`cluster.follower`) around
one mirror, files what an earlier key layout left, and loads the group's tasks.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from typing import Any, Optional

from progressistad.cluster.follower import FOLLOW_BLOCK, StreamFollower
from progressistad.cluster.link import SOCKET_TIMEOUT, Link, describe, safe_url, unreachable
from progressistad.cluster.mirror import TaskMirror
from progressistad.cluster.probe import LinkProbe
from progressistad.cluster.service import RedisTaskService
from progressistad.cluster.store import UNAVAILABLE_ERRORS, RedisTaskStore, close_client, connect
from progressistad.core.store import SweepPolicy
from progressistad.service import SWEEP_CHUNK, Clock

log = logging.getLogger("progressistad.cluster")

MINIMUM_REDIS = (5, 0)
"""Streams (XADD, XREAD) came with Redis 5.0; Debian 12 ships 7.0."""
LEASE_INTERVALS = 1.5
"""The cleanup lease lasts this many intervals: its holder renews it at each sweep, and
another daemon takes over within that time when the holder dies."""


class Cluster:
    """This daemon's membership in a group sharing Redis: clients, service, follower."""

    def __init__(self, url: str, prefix: str, clock: Clock = time.time) -> None:
        self.url = url
        self.prefix = prefix
        owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.backend = RedisTaskStore(connect(url, SOCKET_TIMEOUT), prefix, owner=owner)
        self.reader = RedisTaskStore(connect(url, SOCKET_TIMEOUT + FOLLOW_BLOCK, max_connections=1),
                                     prefix)
        """The follower's: it makes one call at a time."""
        self.mirror = TaskMirror()
        self.link = Link(clock)
        self.clock = clock
        self.service: Optional[RedisTaskService] = None
        self.follower: Optional[StreamFollower] = None
        self.pinger = connect(url, SOCKET_TIMEOUT, max_connections=1)
        """The probe's own connection: a ping queued behind a busy pool would say Redis is lost."""
        self.probe = LinkProbe(self.pinger.ping, self.link)

    async def wait_reachable(self, wait_seconds: float) -> None:
        """Return once Redis answers; raise ConnectionError (one line) after `wait_seconds`."""
        deadline = time.monotonic() + max(0.0, wait_seconds)
        while True:
            try:
                version = await self.backend.server_version()
                break
            except UNAVAILABLE_ERRORS as error:
                if time.monotonic() >= deadline:
                    raise unreachable(self.url, error) from None
                log.info("waiting for Redis at %s: %s", safe_url(self.url), describe(error))
                await asyncio.sleep(min(1.0, max(0.05, deadline - time.monotonic())))
        if version < MINIMUM_REDIS:
            raise ConnectionError(
                f"Redis at {safe_url(self.url)} is version {'.'.join(map(str, version))}; "
                f"progressistad needs {'.'.join(map(str, MINIMUM_REDIS))} or later (streams)")

    def build_service(self, policy: SweepPolicy, cleanup_interval: float) -> RedisTaskService:
        self.service = RedisTaskService(self.backend, self.mirror, self.link, self.clock, policy,
                                        lease_seconds=cleanup_interval * LEASE_INTERVALS)
        self.follower = StreamFollower(self.backend, self.reader, self.mirror, self.link,
                                       self.service.announce_remote)
        return self.service

    async def start(self) -> None:
        """File an earlier layout's tasks for sweeping, load the group's tasks, follow the stream."""
        assert self.follower is not None
        await self._upgrade_layout()
        await self.follower.resync()
        self.follower.start()
        self.probe.start()

    async def _upgrade_layout(self) -> None:
        """File the tasks of a keyspace the previous release wrote, in steps of SWEEP_CHUNK."""
        total, settled = 0, False
        while not settled:
            filed, settled = await self.backend.upgrade_layout(SWEEP_CHUNK)
            total += filed
            await asyncio.sleep(0)
        if total:
            log.info("filed %d task(s) of the previous Redis key layout in the sweep queues", total)

    def problem(self) -> Optional[str]:
        """What systemd's STATUS= line should say about Redis, or None when all is well."""
        return self.link.problem()

    async def close(self) -> None:
        await self.probe.stop()
        if self.follower is not None:
            await self.follower.stop()
        for client in (self.backend.client, self.reader.client, self.pinger):
            try:
                await close_client(client)
            except Exception:  # closing a dead connection has nothing left to report
                pass


async def join(settings: Any, clock: Clock = time.time) -> Cluster:
    """Reach Redis (waiting up to --redis-wait), load the group's tasks, then follow its stream.

    Raises ConnectionError with one line when Redis cannot be reached.
    """
    from progressistad.web.context import sweep_policy

    cluster = Cluster(settings.redis_url, settings.redis_prefix, clock)
    try:
        await cluster.wait_reachable(settings.redis_wait)
        cluster.build_service(sweep_policy(settings), settings.cleanup_interval)
        try:
            await cluster.start()
        except UNAVAILABLE_ERRORS as error:
            raise unreachable(cluster.url, error) from None
    except BaseException:
        await cluster.close()
        raise
    log.info("sharing tasks through Redis at %s (prefix %r): %d task(s) in the group",
             safe_url(cluster.url), cluster.prefix, len(cluster.mirror))
    return cluster
