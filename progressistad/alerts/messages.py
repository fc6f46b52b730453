"""Notification messages: their words, durations in words, and the webhook body. Pure.

Webhook body (version 1, SPEC section 13):
`{"version": 1, "id", "route", "event", "group", "title", "message",
"tasks": [task as served, ...], "dashboard_url", "sent_at"}`; `id` is the
same on every attempt of one message, so a receiver can drop a repeat.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from progressistad.alerts import events

BODY_VERSION = 1
MAX_TASKS = 50
"""Tasks a message carries in full; its text still counts them all."""
MAX_LOG_LINES = 3
"""Failures whose last log line a message quotes."""

_FINISHED = {
    events.CLOSE: "finished", events.ERROR: "failed", events.STALLED: "stalled",
    events.RESUMED: "resumed", events.OVERDUE: "overdue",
}


@dataclass(frozen=True)
class Message:
    """One notification for one route, as every attempt sends it."""

    id: str
    route: str
    event: str
    group: Optional[str]
    title: str
    text: str
    tasks: Tuple[Mapping[str, Any], ...]
    task_ids: Tuple[str, ...]
    """Every task the message is about, also those beyond MAX_TASKS."""
    created_at: float

    def body(self, dashboard_url: Optional[str], sent_at: float) -> Dict[str, Any]:
        """The webhook body of one attempt."""
        return {
            "version": BODY_VERSION, "id": self.id, "route": self.route, "event": self.event,
            "group": self.group, "title": self.title, "message": self.text,
            "tasks": list(self.tasks), "dashboard_url": dashboard_url, "sent_at": sent_at,
        }

    def to_record(self) -> Dict[str, Any]:
        """Everything needed to send it again elsewhere (a shared queue), as JSON-able data."""
        return {"id": self.id, "route": self.route, "event": self.event, "group": self.group,
                "title": self.title, "text": self.text, "tasks": list(self.tasks),
                "task_ids": list(self.task_ids), "created_at": self.created_at}

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> "Message":
        return cls(id=data["id"], route=data["route"], event=data["event"], group=data["group"],
                   title=data["title"], text=data["text"], tasks=tuple(data["tasks"]),
                   task_ids=tuple(data["task_ids"]), created_at=data["created_at"])


def message_id(route: str, event: str, key: str, opened_at: float, task_ids: Sequence[str]) -> str:
    """A stable id: the same burst gives the same id on every daemon and every attempt."""
    digest = hashlib.sha256("\0".join((route, event, key, repr(opened_at), *task_ids)).encode())
    return digest.hexdigest()[:24]


def burst(route: str, event: str, group: Optional[str], tasks: Sequence[Mapping[str, Any]],
          opened_at: float, now: float) -> Message:
    """The message of a burst: `tasks` (served form) of one route, event and group."""
    ids = tuple(task["task_id"] for task in tasks)
    title, text = _words(event, group, tasks, now)
    key = group if group is not None else ids[0]
    return Message(id=message_id(route, event, key, opened_at, ids), route=route, event=event,
                   group=group, title=title, text=text, tasks=tuple(tasks[:MAX_TASKS]),
                   task_ids=ids, created_at=now)


def summary(route: str, held: Sequence[Message], per_minute: int, now: float) -> Message:
    """One message for the messages a rate limit held back."""
    counts: Dict[str, int] = {}
    for message in held:
        counts[message.event] = counts.get(message.event, 0) + len(message.task_ids)
    ids = tuple(task_id for message in held for task_id in message.task_ids)
    tasks = tuple(task for message in held for task in message.tasks)[:MAX_TASKS]
    parts = ", ".join(f"{count} {_FINISHED.get(event, event)}" for event, count in counts.items())
    groups = sorted({m.group or m.task_ids[0] for m in held})
    shown = ", ".join(groups[:5]) + (f" and {len(groups) - 5} more" if len(groups) > 5 else "")
    title = f"{len(held)} more notifications"
    text = (f"{len(held)} more notifications held back by the limit of {per_minute} per "
            f"minute: {parts} ({shown})")
    return Message(id=message_id(route, events.SUMMARY, "", now, [m.id for m in held]),
                   route=route, event=events.SUMMARY, group=None, title=title, text=text,
                   tasks=tasks, task_ids=ids, created_at=now)


def test(route: str, host: str, now: float) -> Message:
    """The message `send_test` sends."""
    return Message(id=message_id(route, events.TEST, host, now, ()), route=route,
                   event=events.TEST, group=None, title="progressistad test notification",
                   text=f"A test notification from progressistad on {host} to route {route}.",
                   tasks=(), task_ids=(), created_at=now)


def _words(event: str, group: Optional[str], tasks: Sequence[Mapping[str, Any]],
           now: float) -> Tuple[str, str]:
    """Title and text: "train: 8 tasks finished", "train: 8 tasks finished in 2 h 13 min"."""
    verb = _FINISHED[event]
    if len(tasks) == 1:
        task = tasks[0]
        subject = task["task_id"]
        title = f"{subject} {verb}"
        text = title + _detail(event, task, now)
        desc = task.get("desc")
        if desc:
            text += f" ({desc})"
    else:
        subject = f"{group}: {len(tasks)} tasks"
        title = f"{subject} {verb}"
        text = title + _detail_of_many(event, tasks, now)
    if event == events.ERROR:
        text += _log_lines(tasks)
    return title, text


def _detail(event: str, task: Mapping[str, Any], now: float) -> str:
    if event == events.CLOSE:
        return f" in {humanise(events.duration(task))}"
    if event == events.ERROR:
        return f" after {humanise(events.duration(task))}" + _progress(task)
    if event == events.STALLED:
        idle = (task.get("stale_at") or now) - (task.get("updated_at") or now)
        return f": no update for {humanise(idle)}" + _progress(task)
    if event == events.OVERDUE:
        running = f": running for {humanise(now - (task.get('created_at') or now))}"
        expected = task.get("expected_duration")
        usually = f", usually {humanise(expected)}" if isinstance(expected, (int, float)) else ""
        return running + usually + _progress(task)
    return _progress(task)


def _detail_of_many(event: str, tasks: Sequence[Mapping[str, Any]], now: float) -> str:
    if event in (events.CLOSE, events.ERROR):
        started = min(task.get("created_at") or now for task in tasks)
        ended = max(task.get("done_at") or task.get("updated_at") or now for task in tasks)
        return f" in {humanise(ended - started)}"
    return ""


def _progress(task: Mapping[str, Any]) -> str:
    n, total, unit = task.get("n"), task.get("total"), task.get("unit")
    if n is None:
        return ""
    amount = _amount(n) + (f"/{_amount(total)}" if isinstance(total, (int, float)) else "")
    return f", at {amount}" + (f" {unit}" if unit else "")


def _amount(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.4g}"


def _log_lines(tasks: Sequence[Mapping[str, Any]]) -> str:
    """The last log line of the first failures (the telemetry's `last_log`, when it is served)."""
    lines: List[str] = []
    for task in tasks:
        last = task.get("last_log")
        if isinstance(last, str) and last.strip():
            lines.append(last.strip() if len(tasks) == 1 else f"{task['task_id']}: {last.strip()}")
        if len(lines) == MAX_LOG_LINES:
            break
    if not lines:
        return ""
    return (": " if len(tasks) == 1 else "\n") + "\n".join(lines)


_UNITS = (("d", 86400), ("h", 3600), ("min", 60), ("s", 1))


def humanise(seconds: float) -> str:
    """A duration in words: "42 s", "5 min 3 s", "2 h 13 min", "3 d 4 h" (two units at most)."""
    if not seconds > 0:
        return "0 s"
    if seconds < 10 and not float(seconds).is_integer():
        return f"{seconds:.1f} s"
    left = int(round(seconds))
    for index, (name, size) in enumerate(_UNITS):
        if left >= size or size == 1:
            major, rest = divmod(left, size)
            text = f"{major} {name}"
            if index + 1 < len(_UNITS):
                minor_name, minor_size = _UNITS[index + 1]
                if rest // minor_size:
                    text += f" {rest // minor_size} {minor_name}"
            return text
    return "0 s"
