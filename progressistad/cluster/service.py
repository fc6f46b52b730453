"""The task service of a daemon in a group: the `TaskService` calls, made against Redis.

Each mutation is one call of the Redis store (`cluster.store`); the daemon shows its
own writes in its mirror at once, and hears of the others' from the stream follower.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

from progressistad.cluster.link import Link, describe
from progressistad.cluster.mirror import MirroredTask, TaskMirror
from progressistad.cluster.store import UNAVAILABLE_ERRORS, PoolBusy, RedisTaskStore
from progressistad.core import wirejson
from progressistad.core.store import Changes, EventRefused, SweepPolicy
from progressistad.service import (
    SWEEP_CHUNK, Clock, ServiceBase, StoreUnavailable, invalid_input, tasks_body,
)


class RedisTaskService(ServiceBase):
    """The `TaskService` interface over the group's Redis store; reads come from Redis itself.

    `store` is the local mirror, for synchronous readers (hub, health, metrics).
    Listeners hear about every change of the group, from the stream follower.
    """

    store: TaskMirror

    def __init__(self, backend: RedisTaskStore, mirror: TaskMirror, link: Link,
                 clock: Clock, policy: SweepPolicy, lease_seconds: float) -> None:
        super().__init__(mirror, clock, policy)
        self.backend = backend
        self.link = link
        self.lease_seconds = lease_seconds
        self.sweeps_run = 0
        self.cleanup_leader = False
        """Whether this daemon held the group's cleanup lease at its last sweep."""

    async def ingest(self, events: Sequence[Mapping[str, Any]]) -> Changes:
        try:
            change = await self._call(self.backend.apply(events, self._clock(), self.store.max_tasks))
        except EventRefused as refused:
            raise invalid_input(refused) from None
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
                    now, fixed_cadence(self.policy), self.lease_seconds, limit=SWEEP_CHUNK))
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
        task = await self._call(self.backend.get(task_id))
        return None if task is None else self._annotated(task)

    async def snapshot(self, statuses: Optional[Iterable[str]] = None) -> Dict[str, Dict[str, Any]]:
        tasks = await self._call(self.backend.snapshot(statuses))
        return {task_id: self._annotated(task) for task_id, task in tasks.items()}

    async def tasks_body(self, statuses: Optional[Iterable[str]] = None) -> bytes:
        tasks = await self.snapshot(statuses)
        return tasks_body(wirejson.tasks_object(
            wirejson.entry(task_id, task) for task_id, task in tasks.items()))

    def announce_remote(self, changes: Changes) -> None:
        """Tell the listeners of changes other daemons made (the stream follower's)."""
        self.announce(changes, local=False)

    def _annotated(self, task: Dict[str, Any]) -> Dict[str, Any]:
        """A task read from Redis with this daemon's annotation (the mirror's), if any."""
        fields = self.store.annotation(task["task_id"])
        return task if fields is None else {**task, **fields}

    async def log_tail(self, task_id: str) -> Optional[List[str]]:
        return await self._call(self.backend.log_tail(task_id))

    async def series(self, task_id: str) -> Optional[Dict[str, Any]]:
        """This daemon's series of a task its mirror holds (series are each daemon's own)."""
        return self.store.series_wire(task_id)

    def _mirror(self, upserted: List[MirroredTask], removed: List[str]) -> Changes:
        """Show this daemon's own writes at once; the stream brings them again, and is ignored."""
        self.announce(self.store.apply(upserted, removed))
        gone = set(removed)
        return Changes(upserted={task.task_id for task in upserted} - gone, removed=gone)

    def health(self) -> Dict[str, Any]:
        report: Dict[str, Any] = {"ok": self.link.ok, "prefix": self.backend.prefix,
                                  "cleanup_leader": self.cleanup_leader}
        if not self.link.ok:
            report["error"] = self.link.problem()
            report["since"] = round(self.link.since, 3)
        return report

    async def _call(self, awaitable: Any) -> Any:
        if not self.link.ok:
            awaitable.close()
            raise StoreUnavailable(f"shared store unavailable: {self.link.error}")
        try:
            return await awaitable
        except PoolBusy as error:
            # Redis never saw the call, and the probe's own connection tells whether it answers.
            raise StoreUnavailable(f"shared store busy: {error}") from None
        except UNAVAILABLE_ERRORS as error:
            # The script may have run without this daemon seeing its reply: resync later.
            self.link.down(error, resync=True)
            raise StoreUnavailable(f"shared store unavailable: {describe(error)}") from None


def fixed_cadence(policy: SweepPolicy) -> SweepPolicy:
    """The policy the Redis sweep applies: tasks shared in Redis keep no gaps between updates,
    so --stale-factor does not adapt there and --stale-seconds decides."""
    return dataclasses.replace(policy, stale_factor=0.0)
