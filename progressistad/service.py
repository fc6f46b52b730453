"""The task service: applies what handlers and timers ask to the store and tells listeners.

It is the one place where the clock meets the pure store, and the one place
that announces changes (to the WebSocket hub, to persistence). Its interface
is asynchronous so that a shared store (Redis, `cluster/service.py`) can stand
behind the same calls; this in-memory one never waits.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence

from progressistad.core.schemas import InvalidInput, field_error
from progressistad.core.store import Changes, EventRefused, SweepPolicy, TaskReader, TaskStore

Listener = Callable[[Changes], None]
OriginListener = Callable[[Changes, bool], None]
"""A listener told, with each change, whether this daemon made it (`local`)."""
Clock = Callable[[], float]

SWEEP_CHUNK = 5000
"""Most tasks one step of a sweep acts on before the loop serves other work (a few ms)."""


class StoreUnavailable(Exception):
    """The shared task store cannot be reached right now; the request may be retried later."""


def invalid_input(refused: EventRefused) -> InvalidInput:
    """The 400 for an event a store refused, naming its field and batch index."""
    # The store cannot tell a batch of one from a single event: the index is named always.
    return field_error(refused.field, refused.problem, refused.index)


class ServiceBase:
    """What every task service holds: the store readers read, the sweep policy, the clock, the
    count of events taken, and the listeners it tells of each change (the hub, persistence)."""

    def __init__(self, store: TaskReader, clock: Clock, policy: SweepPolicy) -> None:
        self.store = store
        self.policy = policy
        self._clock = clock
        self._listeners: List[OriginListener] = []
        self.events_accepted = 0

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(lambda changes, local: listener(changes))

    def add_origin_listener(self, listener: OriginListener) -> None:
        """A listener that also hears whether each change was this daemon's own (`local`) or
        another daemon's, heard from the shared store (which one records a run, say)."""
        self._listeners.append(listener)

    def announce(self, changes: Changes, local: bool = True) -> None:
        if changes:
            self.store.note(changes)
            for listener in self._listeners:
                listener(changes, local)

    def sample(self, task_ids: Iterable[str]) -> None:
        """A point in the series of each task of `task_ids`; the hub asks once per flush.

        What the telemetry budget trims on the way is announced like any other change.
        """
        self.announce(self.store.sample(self._clock(), task_ids))


class TaskService(ServiceBase):
    """Store mutations, timestamped with the injected clock and announced to listeners.

    `store` is what synchronous readers (hub, health, metrics, persistence) read.
    """

    store: TaskStore

    @property
    def policy(self) -> SweepPolicy:
        return self._policy

    @policy.setter
    def policy(self, policy: SweepPolicy) -> None:
        # Events note their tasks' gaps only while stale detection adapts to them.
        self._policy = policy
        self.store.keeps_gaps = policy.adapts

    async def ingest(self, events: Sequence[Mapping[str, Any]]) -> Changes:
        """Apply validated events all or none; raises CapacityError when they do not fit and
        InvalidInput (a 400, naming field and batch index) when one breaks a task rule."""
        try:
            changes = self.store.apply(events, self._clock())
        except EventRefused as refused:
            raise invalid_input(refused) from None
        self.events_accepted += len(events)
        self.announce(changes)
        return changes

    async def remove(self, task_id: str) -> bool:
        changes = self.store.remove(task_id)
        self.announce(changes)
        return bool(changes)

    async def remove_where(
        self, statuses: Optional[Iterable[str]], older_than: Optional[float]
    ) -> List[str]:
        changes = self.store.remove_where(self._clock(), statuses, older_than)
        self.announce(changes)
        return sorted(changes.removed)

    async def sweep(self) -> Changes:
        """Mark stale and remove expired tasks, in steps that never hold the loop for long."""
        done = Changes()
        while True:
            changes = self.store.sweep(self._clock(), self.policy, SWEEP_CHUNK)
            self.announce(changes)
            done.merge(changes)
            if len(changes.upserted) + len(changes.removed) < SWEEP_CHUNK:
                return done
            await asyncio.sleep(0)

    async def get(self, task_id: str) -> Optional[Dict[str, Any]]:
        """The served form of one task, or None."""
        task = self.store.get(task_id)
        return None if task is None else task.to_wire()

    async def log_tail(self, task_id: str) -> Optional[List[str]]:
        """The lines of one task's log tail, oldest first, or None when there is no such task."""
        task = self.store.get(task_id)
        return None if task is None else task.log_tail()

    async def series(self, task_id: str) -> Optional[Dict[str, Any]]:
        """One task's series as GET /tasks/{id}/series serves it, or None."""
        task = self.store.get(task_id)
        return None if task is None else task.series_wire()

    async def snapshot(self, statuses: Optional[Iterable[str]] = None) -> Dict[str, Dict[str, Any]]:
        return self.store.snapshot(statuses)

    async def tasks_body(self, statuses: Optional[Iterable[str]] = None) -> bytes:
        """GET /tasks's answer, `{"tasks": {...}}` as JSON, made of the tasks' cached entries
        (for every task, of the blocks of them the store keeps between changes)."""
        if statuses is not None:
            return tasks_body(self.store.snapshot_json(statuses))
        return self.store.tasks_message(TASKS_BODY_HEAD, b"}")


TASKS_BODY_HEAD = b'{"tasks":'


def tasks_body(tasks_json: str) -> bytes:
    """GET /tasks's answer around a JSON "tasks" object."""
    return b"%s%s}" % (TASKS_BODY_HEAD, tasks_json.encode())

