"""A daemon's local, read-only copy of the tasks held in a shared store.

It offers what the WebSocket hub, `/health` and `/metrics` read from the
in-memory `TaskStore` (`TaskReader`, which both are), fed with the tasks a
shared store published. Pure: no I/O, no clock.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Protocol

from progressistad.core.store import Changes, ReadableTask, TaskReader


class MirroredTask(ReadableTask, Protocol):
    """A task as a shared store published it: two copies compare equal when identical."""

    task_id: str
    version: int
    """Group-wide write version: a later write of any task has a larger one."""


class TaskMirror(TaskReader[MirroredTask]):
    """Every task of the group as this daemon last heard of it."""

    def __init__(self, max_tasks: int = 10000) -> None:
        super().__init__()
        self.max_tasks = max_tasks
        """Kept for `AppContext.apply_settings`; the shared store enforces the limit."""

    def apply(self, upserted: Iterable[MirroredTask], removed: Iterable[str]) -> Changes:
        """Record published changes: tasks written, and removed ids.

        A task older than the copy held is ignored: the daemon that wrote it applies its
        own writes at once, before the stream brings them (and maybe older ones) back.
        """
        changes = Changes()
        for task in upserted:
            held = self._tasks.get(task.task_id)
            if held is not None and held.version >= task.version:
                continue
            self._tasks[task.task_id] = task
            changes.add_upsert(task.task_id)
        for task_id in removed:
            if self._tasks.pop(task_id, None) is not None:
                changes.add_removal(task_id)
        return changes

    def replace_all(self, tasks: Mapping[str, MirroredTask]) -> Changes:
        """Take a fresh snapshot; the changes are what differed from the copy held until now."""
        changes = Changes()
        for task_id in list(self._tasks):
            if task_id not in tasks:
                del self._tasks[task_id]
                changes.add_removal(task_id)
        for task_id, task in tasks.items():
            held = self._tasks.get(task_id)
            if held is None or held != task:
                changes.add_upsert(task_id)
            self._tasks[task_id] = task
        return changes
