"""A daemon's local, read-only copy of the tasks held in a shared store.

It offers what the WebSocket hub, `/health` and `/metrics` read from the
in-memory `TaskStore` (`TaskReader`, which both are), fed with the tasks a
shared store published, and keeps the series behind the dashboards' sparklines,
which are each daemon's own. Pure: no I/O, no clock.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, Mapping, Optional, Protocol

from progressistad.core.store import TELEMETRY_KINDS, Changes, ReadableTask, TaskReader
from progressistad.core.telemetry import DEFAULT_BUDGET_BYTES, SeriesBook


class MirroredTask(ReadableTask, Protocol):
    """A task as a shared store published it: two copies compare equal when identical."""

    task_id: str
    version: int
    """Group-wide write version: a later write of any task has a larger one."""

    def keep_telemetry(self, held: Any) -> None:
        """Take the telemetry of `held` (the copy this one replaces) when this write left it."""


class TaskMirror(TaskReader[MirroredTask]):
    """Every task of the group as this daemon last heard of it."""

    def __init__(self, max_tasks: int = 10000,
                 telemetry_budget_bytes: int = DEFAULT_BUDGET_BYTES) -> None:
        super().__init__()
        self.max_tasks = max_tasks
        """Kept for `AppContext.apply_settings`; the shared store enforces the limit."""
        self._series = SeriesBook(telemetry_budget_bytes)

    @property
    def telemetry_budget_bytes(self) -> int:
        """What this daemon's series may hold (the tails are the shared store's)."""
        return self._series.budget_bytes

    @telemetry_budget_bytes.setter
    def telemetry_budget_bytes(self, value: int) -> None:
        self._series.budget_bytes = value

    @property
    def telemetry_trimmed(self) -> Dict[str, int]:
        return {**dict.fromkeys(TELEMETRY_KINDS, 0), "series": self._series.trimmed}

    def telemetry_held(self) -> Dict[str, int]:
        return {**dict.fromkeys(TELEMETRY_KINDS, 0), "series": self._series.bytes}

    def sample(self, now: float, task_ids: Iterable[str]) -> Changes:
        """A point in the series of each task of `task_ids` held, as `TaskStore.sample`; no
        served field changes (the shared store keeps the tails)."""
        for task_id in task_ids:
            task = self._tasks.get(task_id)
            if task is not None:
                self._series.sample(task_id, now, task.to_wire())
        self._series.trim()
        return Changes()

    def series_wire(self, task_id: str) -> Optional[Dict[str, Any]]:
        """A task's series as GET /tasks/{id}/series serves it, or None when it is not held."""
        if task_id not in self._tasks:
            return None
        return {"task_id": task_id, **self._series.to_wire(task_id)}

    def apply(self, upserted: Iterable[MirroredTask], removed: Iterable[str]) -> Changes:
        """Record published changes: tasks written, and removed ids.

        A task older than the copy held is ignored: the daemon that wrote it applies its
        own writes at once, before the stream brings them (and maybe older ones) back.
        """
        changes = Changes()
        for task in upserted:
            held = self._tasks.get(task.task_id)
            if held is not None:
                if held.version >= task.version:
                    continue
                task.keep_telemetry(held)
            self._tasks[task.task_id] = task
            changes.add_upsert(task.task_id)
        for task_id in removed:
            if self._tasks.pop(task_id, None) is not None:
                self._series.discard(task_id)
                changes.add_removal(task_id)
        return changes

    def replace_all(self, tasks: Mapping[str, MirroredTask]) -> Changes:
        """Take a fresh snapshot; the changes are what differed from the copy held until now."""
        changes = Changes()
        for task_id in list(self._tasks):
            if task_id not in tasks:
                del self._tasks[task_id]
                self._series.discard(task_id)
                changes.add_removal(task_id)
        for task_id, task in tasks.items():
            held = self._tasks.get(task_id)
            if held is None or held != task:
                changes.add_upsert(task_id)
            self._tasks[task_id] = task
        return changes
