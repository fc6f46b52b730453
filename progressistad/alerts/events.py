"""Which notification events a task's change makes, and which routes want them. Pure.

A change is judged from what was seen of the task before (`Seen`, or None for
a task not seen yet) and the task as served after it.
"""

from __future__ import annotations

import functools
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, Mapping, NamedTuple, Optional, Tuple

from progressistad import contract

if TYPE_CHECKING:
    from progressistad.alerts.routes import Route

CLOSE = "close"
ERROR = "error"
STALLED = "stalled"
RESUMED = "resumed"
OVERDUE = "overdue"
KINDS = (CLOSE, ERROR, STALLED, RESUMED, OVERDUE)
"""The events a route may ask for."""
SUMMARY = "summary"
"""The event of a message that folds what a route's rate limit held back."""
TEST = "test"
"""The event of a message sent by `send_test`."""

_RUNNING = frozenset((contract.START, contract.UPDATE))
"""Statuses from which a task can stall: `recovered` cannot until its first new event."""
_KIND_OF_END = {contract.CLOSE: CLOSE, contract.ERROR: ERROR}


class Seen(NamedTuple):
    """What is remembered of a task between changes."""

    status: str
    overdue: bool = False


def seen(task: Mapping[str, Any]) -> Seen:
    return _seen(task["status"], task.get("overdue") is True)


@functools.lru_cache(maxsize=2 * len(contract.STATUSES))
def _seen(status: str, overdue: bool) -> Seen:
    """One Seen for each value, shared by every task that has it (one is held per task)."""
    return Seen(status, overdue)


def remember(before: Optional[Seen], task: Mapping[str, Any]) -> Seen:
    """What to remember of `task` after a change from `before`."""
    # A task loaded after a restart that goes stale stays `recovered`: neither its stall
    # nor its return is announced.
    now = seen(task)
    if before is not None and before.status == contract.RECOVERED and now.status == contract.STALE:
        return before
    return now


def kinds(before: Optional[Seen], task: Mapping[str, Any]) -> Tuple[str, ...]:
    """The events of the change from `before` to `task` (served form), in no particular order."""
    status = task["status"]
    if before is None:
        # Only a task's first event counts: a daemon that starts, or joins a group, must
        # not announce what ended before it was listening.
        if task.get("created_at") != task.get("updated_at"):
            return ()
        before = Seen(contract.START)
    found = []
    end = _KIND_OF_END.get(status)
    if end is not None and before.status != status:
        found.append(end)
    elif status == contract.STALE and before.status in _RUNNING:
        found.append(STALLED)
    elif status in _RUNNING and before.status == contract.STALE:
        found.append(RESUMED)
    if task.get("overdue") is True and not before.overdue and end is None:
        found.append(OVERDUE)
    return tuple(found)


def group_of(task: Mapping[str, Any]) -> Optional[str]:
    """A task's group as the dashboard's `groupOf` (static/tasks.js) finds it, or None."""
    meta = task.get("meta")
    if isinstance(meta, dict):
        group = meta.get("group")
        if isinstance(group, (str, int, float)) and not isinstance(group, bool):
            name = (group if isinstance(group, str) else _js_number(group)).strip()
            if name:
                return name
    colon = task["task_id"].find(":")
    return task["task_id"][:colon] if colon > 0 else None


def _js_number(value: float) -> str:
    """A number as JavaScript's String() writes it, for the common cases."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def wants(route: "Route", kind: str, task: Mapping[str, Any]) -> bool:
    """Whether `route` is told of `kind` for `task`: its events, children, globs, min-duration."""
    if kind not in route.events:
        return False
    meta = task.get("meta") if isinstance(task.get("meta"), dict) else {}
    if not route.children and meta.get("parent_id") is not None:
        return False
    if kind == CLOSE and route.min_duration > 0 and duration(task) < route.min_duration:
        return False
    return route.match == ("*",) or matches(route.match, task, meta)


def matches(globs: Tuple[str, ...], task: Mapping[str, Any], meta: Mapping[str, Any]) -> bool:
    """Whether one of `globs` matches the task id, its group or its `meta.job`."""
    names = [task["task_id"]]
    group = group_of(task)
    if group is not None:
        names.append(group)
    if isinstance(meta.get("job"), str):
        names.append(meta["job"])
    return any(fnmatchcase(name, glob) for glob in globs for name in names)


def duration(task: Mapping[str, Any]) -> float:
    """Seconds from the run's start to its end (or its last update while it runs)."""
    end = task.get("done_at") or task.get("updated_at") or 0.0
    return max(0.0, end - (task.get("created_at") or end))
