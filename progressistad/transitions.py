"""Transitions: what each change the task service announces did to a task's status and run.

`TransitionObserver` listens to the task service (an origin listener: it hears
whether this daemon made each change) and remembers per task its status, its
annotation, when its current run began and its last task object. It
tells its subscribers, once per announcement, of each change that begins or ends
a run (`history.records.step`), changes the status (but from one active status to
another), or turns `overdue` on: the history records runs from them, and
notifications want the same close, error, stalled, resumed and overdue.

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

from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from progressistad import contract
from progressistad.core.store import Changes, TaskReader, TaskStore
from progressistad.history import records

Progress = Tuple[float, Any, Any, Any, Any]
"""What is kept of a task changed in place: updated_at, n, total, desc, unit."""
_PROGRESS_FIELDS = ("updated_at", "n", "total", "desc", "unit")


def _progress(task: Any) -> Progress:
    return (task.updated_at, task.n, task.total, task.desc, task.unit)


def _version(task: Any) -> int:
    return task.version


class _Seen:
    __slots__ = ("status", "annotation", "run_started_at", "task", "stamp")

    def __init__(self, status: str, annotation: Any, run_started_at: float, task: Any,
                 stamp: Any) -> None:
        self.status = status
        self.annotation = annotation
        """The task's annotation as last seen: a new object each time it changes."""
        self.run_started_at = run_started_at
        self.task = task
        self.stamp = stamp
        """What each write of the task changes: its version, or (a task changed in place) its
        progress, which the run a `start` abandons keeps."""


class Transition:
    """One change of a task that matters: a run begins or ends, its status changes, or it
    turns overdue."""

    __slots__ = ("task_id", "before", "after", "step", "task", "run_started_at",
                 "previous_run_started_at", "turned_overdue", "local", "_seen", "_current")

    def __init__(self, task_id: str, before: Optional[str], after: Optional[str],
                 step: records.Step, task: Dict[str, Any], run_started_at: Optional[float],
                 previous_run_started_at: Optional[float], turned_overdue: bool, local: bool,
                 seen: Optional[_Seen], current: Any) -> None:
        self.task_id = task_id
        self.before = before
        """Status before the change; None: the task was not seen before."""
        self.after = after
        """Status after it; None: the task was removed."""
        self.step = step
        """What the change did to the task's runs (`records.step`; none for the same write
        announced again)."""
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

    def previous(self) -> Optional[Dict[str, Any]]:
        """The served form before the change, None when the task was not seen before."""
        seen = self._seen
        if seen is None:
            return None
        if self.after is None:
            return self.task
        form = seen.task.to_wire()
        if isinstance(seen.stamp, tuple):
            form.update(zip(_PROGRESS_FIELDS, seen.stamp))
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
        # The in-memory store changes a task in place: keep its progress, not its object.
        self._stamp: Callable[[Any], Any] = _progress if isinstance(reader, TaskStore) \
            else _version
        self._seen: Dict[str, _Seen] = {}
        self._subscribers: List[Subscriber] = []

    def __len__(self) -> int:
        return len(self._seen)

    def subscribe(self, subscriber: Subscriber) -> None:
        """Call `subscriber` with the transitions of each announcement that makes some."""
        self._subscribers.append(subscriber)

    def prime(self, forms: Optional[Mapping[str, Mapping[str, Any]]] = None) -> None:
        """Remember the tasks present at start, in runs begun at their `created_at`; `forms`:
        their served forms by id, when the caller has them already."""
        for task_id, form in (self._reader.snapshot() if forms is None else forms).items():
            task = self._reader.get(task_id)
            self._seen[task_id] = _Seen(form["status"], _annotation(task), form["created_at"],
                                        task, self._stamp(task))

    def run_started_at(self, task_id: str) -> Optional[float]:
        """When the task's current run began, or None for a task not seen."""
        seen = self._seen.get(task_id)
        return None if seen is None else seen.run_started_at

    def on_changes(self, changes: Changes, local: bool = True) -> None:
        """The task service's origin listener."""
        found: List[Transition] = []
        read, seen_of, stamp_of = self._reader.get, self._seen.get, self._stamp
        for task_id in changes.upserted:
            task = read(task_id)
            if task is None:
                continue
            seen = seen_of(task_id)
            if seen is not None and task.status == seen.status and \
                    getattr(task, "annotation", None) is seen.annotation:
                # The hot path: an update of a running task.
                stamp = stamp_of(task)
                if seen.status != contract.START or stamp == seen.stamp:
                    seen.task, seen.stamp = task, stamp
                    continue
            transition = self._changed(task_id, task, seen, local)
            if transition is not None:
                found.append(transition)
        for task_id in changes.removed:
            seen = self._seen.pop(task_id, None)
            if seen is not None:
                # A removed task's object keeps its last state.
                found.append(Transition(task_id, seen.status, None,
                                        records.step(seen.status, None), seen.task.to_wire(),
                                        None, seen.run_started_at, False, local, seen, None))
        if found:
            for subscriber in self._subscribers:
                subscriber(found)

    def _changed(self, task_id: str, task: Any, seen: Optional[_Seen],
                 local: bool) -> Optional[Transition]:
        status, annotation, stamp = task.status, _annotation(task), self._stamp(task)
        before = None if seen is None else seen.status
        # The same write again (an annotation changed) is no second `start`.
        decided = _NO_EVENT if status == before and stamp == seen.stamp \
            else records.step(before, status)
        turned_overdue = _overdue(annotation) and not (
            seen is not None and _overdue(seen.annotation))
        if seen is not None and not (decided.ends or decided.begins or turned_overdue or (
                status != before and not (status in _ACTIVE and before in _ACTIVE))):
            # Nothing that matters: a start becoming an update, an annotation changed.
            seen.status, seen.annotation, seen.task, seen.stamp = status, annotation, task, stamp
            return None
        form = task.to_wire()
        previous_start = None if seen is None else seen.run_started_at
        start = records.run_start(before, form) if decided.begins else previous_start
        assert start is not None
        self._seen[task_id] = _Seen(status, annotation, start, task, stamp)
        return Transition(task_id, before, status, decided, form, start, previous_start,
                          turned_overdue, local, seen, task)


_ACTIVE = contract.ACTIVE_STATUSES
_NO_EVENT = records.Step()


def _annotation(task: Any) -> Any:
    """What a task is annotated with (the store's and the mirror's `annotate`), or None."""
    return getattr(task, "annotation", None)


def _overdue(annotation: Any) -> bool:
    return annotation is not None and annotation.get("overdue") is True
