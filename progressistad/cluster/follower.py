"""The stream follower: keeps a daemon's mirror current with the group's change stream.

After losing Redis it catches up from the stream, or, when it fell too far behind
(or a write of its own may have gone unseen), resyncs from a fresh snapshot.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable, Optional

from progressistad.cluster.link import Link
from progressistad.cluster.mirror import TaskMirror
from progressistad.cluster.store import (
    UNAVAILABLE_ERRORS, RedisTaskStore, decode_entry, written_by,
)
from progressistad.core.store import Changes

log = logging.getLogger("progressistad.cluster")

FOLLOW_BLOCK = 1.0
"""Seconds one stream read waits for news; also how soon a silent cut is noticed."""
FOLLOW_BATCH = 500
RECONNECT_DELAY = 0.5
STOP_TIMEOUT = 2.0
"""Seconds shutdown waits for the follower to end after cancelling it."""


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
        self._stopping = False

    async def resync(self) -> None:
        """Replace the mirror with a fresh snapshot; dashboards get whatever differed."""
        tasks, self.last_id = await self.reader.view()
        self.resyncs += 1
        self.announce(self.mirror.replace_all(tasks))

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Cancel the follower, and flag it: redis-py 4.3 swallows a cancel that lands in a read."""
        if self._task is None:
            return
        self._stopping = True
        self._task.cancel()
        await asyncio.wait([self._task], timeout=STOP_TIMEOUT)
        if not self._task.done():
            log.warning("the change stream follower did not stop within %.0f s; leaving it", STOP_TIMEOUT)
        elif not self._task.cancelled() and self._task.exception() is not None:
            log.debug("the change stream follower ended with %r", self._task.exception())

    async def _run(self) -> None:
        reconnecting = False
        while not self._stopping:
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
            if written_by(fields, self.backend.owner):
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
