"""Several daemons, one view: the task service on Redis and the stream that keeps each daemon current.

Imported only when `--redis-url` is set. Mutations go to Redis as one Lua
script each (`redis_store`); every daemon follows the group's change stream
into a local `TaskMirror`, which its WebSocket hub, `/health` and `/metrics`
read. A daemon that loses Redis reports itself degraded, answers writes with
503, and on reconnection catches up from the stream or, when it fell too far
behind, resyncs its mirror and its dashboards from a fresh snapshot.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
import uuid
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence

from progressistad.web.auth import redact_uri
from progressistad.cluster.mirror import TaskMirror
from progressistad.cluster.store import (
    UNAVAILABLE_ERRORS,
    InvalidState,
    RedisTaskStore,
    connect,
    decode_entry,
)
from progressistad.service import SWEEP_CHUNK, Listener, StoreUnavailable
from progressistad.core.store import Changes, SweepPolicy

log = logging.getLogger("progressistad.cluster")

SOCKET_TIMEOUT = 3.0
"""Seconds a Redis command may take before the daemon counts Redis as lost."""
FOLLOW_BLOCK = 1.0
"""Seconds one stream read waits for news; also how soon a silent cut is noticed."""
FOLLOW_BATCH = 500
RECONNECT_DELAY = 0.5
MINIMUM_REDIS = (5, 0)
"""Streams (XADD, XREAD) came with Redis 5.0; Debian 12 ships 7.0."""
LEASE_INTERVALS = 1.5
"""The cleanup lease lasts this many intervals: its holder renews it at each sweep, and
another daemon takes over within that time when the holder dies."""


def describe(error: BaseException) -> str:
    """One line for an error from Redis or the socket under it."""
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


def safe_url(url: str) -> str:
    """`url` with any password replaced, for logs and /health."""
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest:
        credentials, _, host = rest.rpartition("@")
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user + ':' if user else ':'}***@{host}"
    return redact_uri(url)


class Link:
    """Whether this daemon currently reaches Redis, and why not."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.ok = True
        self.error: Optional[str] = None
        self.since = clock()
        self.outages = 0
        self.needs_resync = False
        """A write of ours may have gone unseen: the mirror must be reloaded, not caught up."""
        self.on_change: Callable[[], None] = lambda: None
        """Called when Redis is lost or back (the daemon refreshes systemd's STATUS=)."""

    def down(self, error: BaseException, resync: bool = False) -> None:
        self.needs_resync = self.needs_resync or resync
        if self.ok:
            self.outages += 1
            self.since = self._clock()
            log.warning("lost Redis: %s", describe(error))
            self.ok = False
            self.error = describe(error)
            self.on_change()
        self.error = describe(error)

    def up(self) -> None:
        if not self.ok:
            log.info("Redis is back after %.1fs", self._clock() - self.since)
            self.since = self._clock()
            self.ok = True
            self.error = None
            self.on_change()


class RedisTaskService:
    """The `TaskService` interface over the group's Redis store; reads come from Redis itself.

    `store` is the local mirror, for synchronous readers (hub, health, metrics).
    Listeners hear about every change of the group, from the stream follower.
    """

    def __init__(self, backend: RedisTaskStore, mirror: TaskMirror, link: Link,
                 clock: Callable[[], float], policy: SweepPolicy, lease_seconds: float) -> None:
        self.backend = backend
        self.store = mirror
        self.link = link
        self.policy = policy
        self.lease_seconds = lease_seconds
        self._clock = clock
        self._listeners: List[Listener] = []
        self.events_accepted = 0
        self.sweeps_run = 0
        self.cleanup_leader = False
        """Whether this daemon held the group's cleanup lease at its last sweep."""

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def announce(self, changes: Changes) -> None:
        if changes:
            for listener in self._listeners:
                listener(changes)

    async def ingest(self, events: Sequence[Mapping[str, Any]]) -> Changes:
        change = await self._call(self.backend.apply(events, self._clock(), self.store.max_tasks))
        self.events_accepted += len(events)
        return self._mirror(*change)

    async def remove(self, task_id: str) -> bool:
        removed = await self._call(self.backend.remove(task_id))
        self._mirror([], removed)
        return bool(removed)

    async def remove_where(self, statuses: Optional[Iterable[str]],
                           older_than: Optional[float]) -> List[str]:
        removed = await self._call(self.backend.remove_where(self._clock(), statuses, older_than))
        self._mirror([], removed)
        return sorted(removed)

    async def sweep(self) -> Changes:
        """One sweep for the whole group, by whichever daemon takes the lease first this interval.

        It runs in script calls of at most SWEEP_CHUNK tasks, so that Redis serves the
        group between them; each call checks and renews the lease, and a sweep that
        loses it (or Redis) stops there, the rest left to the next holder.
        """
        done = Changes()
        now = self._clock()
        while True:
            try:
                result = await self._call(self.backend.sweep(
                    now, self.policy, self.lease_seconds, limit=SWEEP_CHUNK))
            except StoreUnavailable:
                return done
            if result is None:
                self.cleanup_leader = False
                return done
            self.cleanup_leader = True
            upserted, removed, more = result
            done.merge(self._mirror(upserted, removed))
            if not more:
                self.sweeps_run += 1
                return done
            await asyncio.sleep(0)

    async def get(self, task_id: str) -> Optional[Dict[str, Any]]:
        return await self._call(self.backend.get(task_id))

    async def snapshot(self, statuses: Optional[Iterable[str]] = None) -> Dict[str, Dict[str, Any]]:
        return await self._call(self.backend.snapshot(statuses))

    def _mirror(self, upserted: List[Any], removed: List[str]) -> Changes:
        """Show this daemon's own writes at once; the stream brings them again, and is ignored."""
        self.announce(self.store.apply(upserted, removed))
        return _changes(upserted, removed)

    def health(self) -> Dict[str, Any]:
        report: Dict[str, Any] = {"ok": self.link.ok, "prefix": self.backend.prefix,
                                  "cleanup_leader": self.cleanup_leader}
        if not self.link.ok:
            report["error"] = f"Redis unreachable: {self.link.error}"
            report["since"] = round(self.link.since, 3)
        return report

    async def _call(self, awaitable: Any) -> Any:
        if not self.link.ok:
            awaitable.close()
            raise StoreUnavailable(f"shared store unavailable: {self.link.error}")
        try:
            return await awaitable
        except UNAVAILABLE_ERRORS as error:
            # The script may have run without this daemon seeing its reply: resync later.
            self.link.down(error, resync=True)
            raise StoreUnavailable(f"shared store unavailable: {describe(error)}") from None


def _changes(upserted: Iterable[Dict[str, Any]], removed: Iterable[str]) -> Changes:
    changes = Changes()
    for task in upserted:
        changes.add_upsert(task.task_id)
    for task_id in removed:
        changes.add_removal(task_id)
    return changes


class StreamFollower:
    """Feeds the mirror from the group's change stream, and keeps `link` up to date."""

    def __init__(self, backend: RedisTaskStore, reader: RedisTaskStore, mirror: TaskMirror,
                 link: Link, announce: Callable[[Changes], None]) -> None:
        self.backend = backend
        self.reader = reader
        """A store on its own connection pool: stream reads block on their connection."""
        self.mirror = mirror
        self.link = link
        self.announce = announce
        self.last_id = "0-0"
        self.resyncs = 0
        self._task: Optional["asyncio.Task[None]"] = None

    async def resync(self) -> None:
        """Replace the mirror with a fresh snapshot; dashboards get whatever differed."""
        tasks, self.last_id = await self.reader.view()
        self.resyncs += 1
        self.announce(self.mirror.replace_all(tasks))

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _run(self) -> None:
        reconnecting = False
        while True:
            try:
                if reconnecting:
                    await self._reconnect()
                    reconnecting = False
                await self._follow_once()
            except UNAVAILABLE_ERRORS as error:
                self.link.down(error)
                reconnecting = True
                await asyncio.sleep(RECONNECT_DELAY)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("following the change stream failed; resyncing")
                reconnecting = True
                await asyncio.sleep(RECONNECT_DELAY)

    async def _reconnect(self) -> None:
        await self.reader.ping()
        # Pooled connections to the old server are dead: drop them before serving again.
        await self.backend.client.connection_pool.disconnect()
        if self.link.needs_resync or self.last_id == "0-0" \
                or not await self.reader.has_entry(self.last_id):
            log.info("resyncing with the group after losing Redis")
            self.link.needs_resync = False
            await self.resync()
        self.link.up()

    async def _follow_once(self) -> None:
        entries = await self.reader.read_changes(self.last_id, FOLLOW_BLOCK, FOLLOW_BATCH)
        if not self.link.ok:
            await self._reconnect()
            return
        changes = Changes()
        for entry_id, fields in entries:
            if self.backend.owner and fields.get(b"o") == self.backend.owner.encode():
                self.last_id = entry_id
                continue
            change = decode_entry(fields)
            if change is None:
                self.announce(changes)
                await self.resync()
                return
            changes.merge(self.mirror.apply(*change))
            self.last_id = entry_id
        self.announce(changes)
        if len(entries) == FOLLOW_BATCH and not await self.reader.has_entry(self.last_id):
            log.warning("fell behind the change stream; resyncing")
            await self.resync()


class Cluster:
    """This daemon's membership in a group sharing Redis: clients, service, follower."""

    def __init__(self, url: str, prefix: str, clock: Callable[[], float] = time.time) -> None:
        self.url = url
        self.prefix = prefix
        owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.backend = RedisTaskStore(connect(url, SOCKET_TIMEOUT), prefix, owner=owner)
        self.reader = RedisTaskStore(connect(url, SOCKET_TIMEOUT + FOLLOW_BLOCK), prefix)
        self.mirror = TaskMirror()
        self.link = Link(clock)
        self.clock = clock
        self.service: Optional[RedisTaskService] = None
        self.follower: Optional[StreamFollower] = None

    async def wait_reachable(self, wait_seconds: float) -> None:
        """Return once Redis answers; raise ConnectionError (one line) after `wait_seconds`."""
        deadline = time.monotonic() + max(0.0, wait_seconds)
        while True:
            try:
                version = await self.backend.server_version()
                break
            except UNAVAILABLE_ERRORS as error:
                if time.monotonic() >= deadline:
                    raise ConnectionError(
                        f"cannot reach Redis at {safe_url(self.url)}: {describe(error)}") from None
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
                                       self.service.announce)
        return self.service

    async def start(self) -> None:
        """File an earlier layout's tasks for sweeping, load the group's tasks, follow the stream."""
        assert self.follower is not None
        await self._upgrade_layout()
        await self.follower.resync()
        self.follower.start()

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
        return None if self.link.ok else f"Redis unreachable: {self.link.error}"

    async def close(self) -> None:
        if self.follower is not None:
            await self.follower.stop()
        for store in (self.backend, self.reader):
            try:
                await store.close()
            except Exception:  # closing a dead connection has nothing left to report
                pass


def read_state_file(path: str) -> List[Dict[str, Any]]:
    """The tasks of a JSON state file, ours or the earlier build's; ValueError says what is wrong."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror}") from None
    except ValueError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from None
    tasks = data.get("tasks") if isinstance(data, dict) else None
    if not isinstance(tasks, dict):
        raise ValueError(f"{path} is not a progressista state file: no \"tasks\" object")
    loaded = []
    for task_id, task in tasks.items():
        if not isinstance(task, dict):
            raise ValueError(f"{path}: task {task_id!r} is not an object")
        task = dict(task, task_id=task.get("task_id", task_id))
        if task.get("status") not in ("close", "error", "stale"):
            task["status"] = "recovered"
        loaded.append(task)
    return loaded


async def import_state(url: str, prefix: str, path: str, clock: Callable[[], float] = time.time) -> int:
    """Load a state file into the group's Redis store; every running daemon resyncs."""
    tasks = read_state_file(path)
    backend = RedisTaskStore(connect(url, SOCKET_TIMEOUT), prefix)
    try:
        try:
            return await backend.import_tasks(tasks, clock())
        except InvalidState as error:
            raise ValueError(f"{path}: {error}") from None
        except UNAVAILABLE_ERRORS as error:
            raise ConnectionError(f"cannot reach Redis at {safe_url(url)}: {describe(error)}") from None
    finally:
        await backend.close()


async def join(settings: Any, clock: Callable[[], float] = time.time) -> Cluster:
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
            raise ConnectionError(
                f"cannot reach Redis at {safe_url(cluster.url)}: {describe(error)}") from None
    except BaseException:
        await cluster.close()
        raise
    log.info("sharing tasks through Redis at %s (prefix %r): %d task(s) in the group",
             safe_url(cluster.url), cluster.prefix, len(cluster.mirror))
    return cluster


def run_import(settings: Any, path: str) -> int:
    """`progressistad --import-state FILE`: load the file into Redis; the exit status."""
    import sys

    if not settings.redis_url:
        print("progressistad: --import-state needs --redis-url (or PROGRESSISTA_REDIS_URL)",
              file=sys.stderr)
        return 2
    try:
        count = asyncio.run(import_state(settings.redis_url, settings.redis_prefix, path))
    except (ValueError, ConnectionError) as error:
        print(f"progressistad: {error}", file=sys.stderr)
        return 1
    print(f"imported {count} task(s) from {path} into "
          f"{safe_url(settings.redis_url)} (prefix {settings.redis_prefix!r})")
    return 0
