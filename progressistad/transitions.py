"""Transitions: what each change the task service announces did to a task's status and run.

`TransitionObserver` listens to the task service (an origin listener: it hears
whether this daemon made each change) and remembers per task its status, its
served `overdue` flag, when its current run began and its last task object. It
tells its subscribers, once per announcement, of each change that begins or ends
a run (`history.records.step`), changes the status, or turns `overdue` on: the
history records runs from them, and notifications want the same close, error,
stalled, resumed and overdue.

A run begins at the task's `created_at` for its first run, else at the
`updated_at` of the event that began it (`records.run_start`). A task present at
start (`prime`: loaded from the state file, or the group's snapshot) is taken to
be in a run that began at its `created_at`, and makes no transition.

The approximation: a change is what the service announces, so several events on
one task inside one batch (or, from another daemon, inside one read of the shared
stream) are seen as their net change; a batch that closes a task and starts it
again is a start on a running task. The in-memory store changes a task in place:
for the run that a `start` on a running task abandons, the task's progress is as
last seen (`n`, `total`, `desc`, `unit`, last update) and its other fields as the
start left them.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

from progressistad import contract
from progressistad.core.store import Changes, TaskReader, TaskStore
from progressistad.history import records

Progress = Tuple[float, Any, Any, Any, Any]
"""What is kept of a task changed in place: updated_at, n, total, desc, unit."""
_PROGRESS_FIELDS = ("updated_at", "n", "total", "desc", "unit")


class _Seen:
    __slots__ = ("status", "overdue", "run_started_at", "task", "stamp", "progress")

    def __init__(self, status: str, overdue: bool, run_started_at: float, task: Any,
                 stamp: Any, progress: Optional[Progress]) -> None:
        self.status = status
        self.overdue = overdue
        self.run_started_at = run_started_at
        self.task = task
        self.stamp = stamp
        """What changes with each write of the task: its version, or its last update."""
        self.progress = progress


class Transition:
    """One change of a task that matters: a run begins or ends, its status changes, or it
    turns overdue."""

    __slots__ = ("task_id", "before", "after", "task", "run_started_at",
                 "previous_run_started_at", "turned_overdue", "local", "_seen", "_current")

    def __init__(self, task_id: str, before: Optional[str], after: Optional[str],
                 task: Dict[str, Any], run_started_at: Optional[float],
                 previous_run_started_at: Optional[float], turned_overdue: bool, local: bool,
                 seen: Optional[_Seen], current: Any) -> None:
        self.task_id = task_id
        self.before = before
        """Status before the change; None: the task was not seen before."""
        self.after = after
        """Status after it; None: the task was removed."""
        self.task = task
        """Served form after the change; for a removal, the last one seen."""
        self.run_started_at = run_started_at
        """When the task's run after the change began (None after a removal)."""
        self.previous_run_started_at = previous_run_started_at
        """When the run the task was in before the change began (None when not seen)."""
        self.turned_overdue = turned_overdue
        self.local = local
        """Whether this daemon made the change (False: another daemon of the group did)."""
        self._seen = seen
        self._current = current

    @property
    def step(self) -> records.Step:
        return records.step(self.before, self.after)

    def previous(self) -> Optional[Dict[str, Any]]:
        """The served form before the change, None when the task was not seen before."""
        seen = self._seen
        if seen is None:
            return None
        if self.after is None:
            return self.task
        form = seen.task.to_wire()
        if seen.progress is not None:
            form.update(zip(_PROGRESS_FIELDS, seen.progress))
        form["status"] = seen.status
        return form

    def log_tails(self) -> Tuple[List[str], List[str]]:
        """The task's log tail before and after the change, where the store keeps one."""
        before = [] if self._seen is None else _log_tail(self._seen.task)
        return before, ([] if self._current is None else _log_tail(self._current))


def _log_tail(task: Any) -> List[str]:
    tail = getattr(task, "log_tail", None)
    return list(tail()) if callable(tail) else []


Subscriber = Callable[[List[Transition]], None]


class TransitionObserver:
    """Turns the task service's announcements into transitions for its subscribers."""

    def __init__(self, reader: TaskReader) -> None:
        self._reader = reader
        self._in_place = isinstance(reader, TaskStore)
        self._seen: Dict[str, _Seen] = {}
        self._subscribers: List[Subscriber] = []

    def __len__(self) -> int:
        return len(self._seen)

    def subscribe(self, subscriber: Subscriber) -> None:
        """Call `subscriber` with the transitions of each announcement that makes some."""
        self._subscribers.append(subscriber)

    def prime(self) -> None:
        """Remember the tasks present at start, in runs begun at their `created_at`."""
        for task_id, form in self._reader.snapshot().items():
            task = self._reader.get(task_id)
            self._seen[task_id] = self._remember(task, form["status"], form.get("overdue") is True,
                                                 form["created_at"])

    def run_started_at(self, task_id: str) -> Optional[float]:
        """When the task's current run began, or None for a task not seen."""
        seen = self._seen.get(task_id)
        return None if seen is None else seen.run_started_at

    def on_changes(self, changes: Changes, local: bool = True) -> None:
        """The task service's origin listener."""
        found: List[Transition] = []
        read = self._reader.get
        for task_id in changes.upserted:
            task = read(task_id)
            if task is not None:
                transition = self._changed(task_id, task, local)
                if transition is not None:
                    found.append(transition)
        for task_id in changes.removed:
            seen = self._seen.pop(task_id, None)
            if seen is not None:
                # A removed task's object keeps its last state.
                found.append(Transition(task_id, seen.status, None, seen.task.to_wire(), None,
                                        seen.run_started_at, False, local, seen, None))
        if found:
            for subscriber in self._subscribers:
                subscriber(found)

    def _changed(self, task_id: str, task: Any, local: bool) -> Optional[Transition]:
        seen = self._seen.get(task_id)
        status = task.status
        annotation = self._reader.annotation(task_id)
        overdue = annotation is not None and annotation.get("overdue") is True
        stamp = self._stamp(task)
        if seen is not None and status == seen.status and overdue == seen.overdue and (
                status != contract.START or stamp == seen.stamp):
            # The hot path: an update of a running task.
            seen.task, seen.stamp = task, stamp
            if self._in_place:
                seen.progress = self._progress(task)
            return None
        before = None if seen is None else seen.status
        decided = records.step(before, status)
        turned_overdue = overdue and not (seen is not None and seen.overdue)
        if seen is not None and not (decided.ends or decided.begins or turned_overdue
                                     or status != before):
            seen.task, seen.stamp, seen.overdue = task, stamp, overdue
            if self._in_place:
                seen.progress = self._progress(task)
            return None
        form = task.to_wire()
        previous_start = None if seen is None else seen.run_started_at
        start = records.run_start(before, form) if decided.begins else previous_start
        self._seen[task_id] = self._remember(task, status, overdue, start)
        return Transition(task_id, before, status, form, start, previous_start, turned_overdue,
                          local, seen, task)

    def _remember(self, task: Any, status: str, overdue: bool, run_started_at: float) -> _Seen:
        return _Seen(status, overdue, run_started_at, task, self._stamp(task),
                     self._progress(task) if self._in_place else None)

    def _stamp(self, task: Any) -> Any:
        return task.updated_at if self._in_place else task.version

    @staticmethod
    def _progress(task: Any) -> Progress:
        return (task.updated_at, task.n, task.total, task.desc, task.unit)

