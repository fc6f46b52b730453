"""Bursts into messages: one message per route, event and task group per group-wait, and a
per-route rate limit whose excess folds into one summary. Pure: `now` is an argument."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any, Deque, Dict, List, Mapping, Optional, Tuple

from progressistad.alerts import events, messages
from progressistad.alerts.messages import Message
from progressistad.alerts.routes import Route

RATE_WINDOW = 60.0
"""Seconds over which a route's rate limit counts messages."""
HELD_TASKS = messages.MAX_TASKS
"""Tasks a rate limit keeps in full for its summary; beyond them only ids are kept."""
_UNKNOWN = object()


@dataclass
class _Burst:
    route: Route
    event: str
    group: Optional[str]
    opened_at: float
    tasks: Dict[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def due_at(self) -> float:
        return self.opened_at + self.route.group_wait


@dataclass
class _Window:
    """A route's messages of the last minute, and those it held back."""

    sent: Deque[float] = field(default_factory=deque)
    held: List[Message] = field(default_factory=list)
    held_tasks: int = 0

    def admit(self, now: float, per_minute: int) -> bool:
        while self.sent and self.sent[0] <= now - RATE_WINDOW:
            self.sent.popleft()
        if per_minute and len(self.sent) >= per_minute:
            return False
        self.sent.append(now)
        return True

    def hold(self, message: Message) -> None:
        if self.held_tasks >= HELD_TASKS:
            message = replace(message, tasks=())
        self.held_tasks += len(message.tasks)
        self.held.append(message)

    def opens_at(self) -> Optional[float]:
        return self.sent[0] + RATE_WINDOW if self.held and self.sent else None


class Gatherer:
    """Notices in, messages out once their burst's group-wait has passed and the limit allows."""

    def __init__(self) -> None:
        self._bursts: Dict[Tuple[str, str, str], _Burst] = {}
        self._windows: Dict[str, _Window] = {}
        self._limits: Dict[str, int] = {}

    def __len__(self) -> int:
        """Bursts being gathered and messages held back."""
        return len(self._bursts) + sum(len(w.held) for w in self._windows.values())

    def add(self, route: Route, event: str, task: Mapping[str, Any], now: float,
            group: Any = _UNKNOWN) -> Optional[float]:
        """`task` (served, of `group` if known) made `event`: a new burst's due time, or None."""
        if group is _UNKNOWN:
            group = events.group_of(task)
        key = (route.name, event, group if group is not None else "\0" + task["task_id"])
        burst = self._bursts.get(key)
        opened = burst is None
        if burst is None:
            burst = self._bursts[key] = _Burst(route, event, group, now)
            self._limits[route.name] = route.rate_limit
        burst.tasks[task["task_id"]] = task
        return burst.due_at if opened else None

    def due(self, now: float) -> List[Message]:
        """Messages to send now: summaries whose slot opened, then bursts whose wait is over."""
        out: List[Message] = []
        for name, window in self._windows.items():
            if window.held and window.admit(now, self._limits[name]):
                out.append(messages.summary(name, window.held, self._limits[name], now))
                window.held, window.held_tasks = [], 0
        ready = sorted(((key, b) for key, b in self._bursts.items() if b.due_at <= now),
                       key=lambda item: item[1].opened_at)
        for key, burst in ready:
            del self._bursts[key]
            message = messages.burst(burst.route.name, burst.event, burst.group,
                                     list(burst.tasks.values()), burst.opened_at, now)
            window = self._windows.setdefault(burst.route.name, _Window())
            if not window.held and window.admit(now, burst.route.rate_limit):
                out.append(message)
            else:
                window.hold(message)
        self._windows = {name: w for name, w in self._windows.items() if w.held or w.sent}
        return out

    def drain(self, now: float) -> List[Message]:
        """Every message gathered or held, whatever its wait and the limits (at shutdown)."""
        out = [messages.summary(name, w.held, self._limits[name], now)
               for name, w in self._windows.items() if w.held]
        out += [messages.burst(b.route.name, b.event, b.group, list(b.tasks.values()),
                               b.opened_at, now) for b in self._bursts.values()]
        self._bursts, self._windows = {}, {}
        return out

    def next_due(self) -> Optional[float]:
        """When `due` next has something to give, or None when nothing waits."""
        times = [burst.due_at for burst in self._bursts.values()]
        times += [t for t in (w.opens_at() for w in self._windows.values()) if t is not None]
        return min(times) if times else None

    def forget(self, route_names: Any) -> None:
        """Drop what waits for routes that no longer exist (after a reload)."""
        keep = set(route_names)
        self._bursts = {k: b for k, b in self._bursts.items() if k[0] in keep}
        self._windows = {name: w for name, w in self._windows.items() if name in keep}
