"""Where messages wait for delivery and where finished deliveries are listed.

`MessageQueue` and `DeliveryLog` are the seam for a store shared by several
daemons (Redis); `MemoryQueue` and `MemoryLog` keep them in this process.
Both interfaces are asynchronous so that a shared store can stand behind them.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass
from typing import Any, Deque, Dict, List, Mapping, Optional, Protocol, Set

from progressistad.alerts.messages import Message

QUEUE_CAPACITY = 1000
"""Messages waiting at most; beyond it the oldest is dropped."""
LOG_LENGTH = 200
"""Finished deliveries that /notifications lists."""

SENT = "sent"
FAILED = "failed"
DROPPED = "dropped"
QUEUED = "queued"
RETRYING = "retrying"
RESULTS = (SENT, FAILED, DROPPED)
"""How a delivery ends."""


@dataclass
class Entry:
    """A message waiting for its next attempt."""

    message: Message
    queued_at: float
    attempts: int = 0
    not_before: float = 0.0
    first_attempt_at: Optional[float] = None
    error: Optional[str] = None
    once: bool = False
    """Make a single attempt (a test message): its sender wants the answer now."""

    def to_record(self) -> Dict[str, Any]:
        data = asdict(self)
        data["message"] = self.message.to_record()
        return data

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> "Entry":
        return cls(**{**data, "message": Message.from_record(data["message"])})

    def describe(self) -> Dict[str, Any]:
        """How /notifications lists a delivery still under way."""
        message = self.message
        return {"id": message.id, "route": message.route, "event": message.event,
                "group": message.group, "tasks": list(message.task_ids),
                "result": RETRYING if self.attempts else QUEUED, "attempts": self.attempts,
                "error": self.error, "latency": None, "queued_at": self.queued_at,
                "finished_at": None}


@dataclass(frozen=True)
class Record:
    """A finished delivery, as /notifications lists it."""

    id: str
    route: str
    event: str
    group: Optional[str]
    tasks: List[str]
    result: str
    attempts: int
    error: Optional[str]
    latency: Optional[float]
    """Seconds from queueing to the receiver's acceptance, for a message sent."""
    queued_at: float
    finished_at: float

    @classmethod
    def of(cls, entry: Entry, result: str, now: float) -> "Record":
        message = entry.message
        return cls(id=message.id, route=message.route, event=message.event, group=message.group,
                   tasks=list(message.task_ids), result=result, attempts=entry.attempts,
                   error=entry.error, latency=now - entry.queued_at if result == SENT else None,
                   queued_at=entry.queued_at, finished_at=now)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


class MessageQueue(Protocol):
    async def push(self, entry: Entry) -> List[Entry]:
        """Add `entry`; return the entries dropped to make room (oldest first)."""

    async def take(self, now: float, busy: Set[str]) -> Optional[Entry]:
        """Lease the entry due soonest (by `now`) whose route is not in `busy`, or None."""

    async def retry(self, entry: Entry) -> None:
        """Give a leased entry back, to be taken again at `entry.not_before`."""

    async def done(self, entry: Entry) -> None:
        """Forget a leased entry: it was sent, or it failed for good."""

    async def next_due(self, busy: Set[str]) -> Optional[float]:
        """When an entry of a route not in `busy` is next due, or None when none waits."""

    async def pending(self) -> List[Entry]:
        """Entries waiting or leased, oldest first."""

    async def length(self) -> int:
        """How many entries wait or are leased."""


class DeliveryLog(Protocol):
    async def add(self, record: Record) -> None: ...

    async def last(self) -> List[Record]:
        """Finished deliveries, newest first."""


class MemoryQueue:
    """The queue in this process, in order of arrival."""

    def __init__(self, capacity: int = QUEUE_CAPACITY) -> None:
        self.capacity = capacity
        self._entries: Dict[str, Entry] = {}
        self._leased: Set[str] = set()

    def __len__(self) -> int:
        return len(self._entries)

    async def push(self, entry: Entry) -> List[Entry]:
        dropped = []
        if entry.message.id in self._entries:
            return dropped
        while len(self._entries) >= self.capacity:
            oldest = next((key for key in self._entries if key not in self._leased), None)
            if oldest is None:
                break
            dropped.append(self._entries.pop(oldest))
        self._entries[entry.message.id] = entry
        return dropped

    async def take(self, now: float, busy: Set[str]) -> Optional[Entry]:
        best = None
        for key, entry in self._entries.items():
            if key in self._leased or entry.message.route in busy or entry.not_before > now:
                continue
            if best is None or entry.not_before < best.not_before:
                best = entry
        if best is not None:
            self._leased.add(best.message.id)
        return best

    async def retry(self, entry: Entry) -> None:
        self._leased.discard(entry.message.id)
        if entry.message.id in self._entries:
            self._entries[entry.message.id] = entry

    async def done(self, entry: Entry) -> None:
        self._leased.discard(entry.message.id)
        self._entries.pop(entry.message.id, None)

    async def next_due(self, busy: Set[str]) -> Optional[float]:
        times = [entry.not_before for key, entry in self._entries.items()
                 if key not in self._leased and entry.message.route not in busy]
        return min(times) if times else None

    async def pending(self) -> List[Entry]:
        return list(self._entries.values())

    async def length(self) -> int:
        return len(self._entries)


class MemoryLog:
    """The last deliveries in this process."""

    def __init__(self, length: int = LOG_LENGTH) -> None:
        self._records: Deque[Record] = deque(maxlen=length)

    async def add(self, record: Record) -> None:
        self._records.appendleft(record)

    async def last(self) -> List[Record]:
        return list(self._records)
