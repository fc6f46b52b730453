"""The pure task store: apply events, sweep for stale and expired tasks, delete.

No I/O, no clock and no framework: every method that depends on time takes
`now` (epoch seconds) and every mutation returns the `Changes` it made, so the
caller decides what to publish and persist.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field
from typing import (
    Any, Dict, Generic, Iterable, Iterator, List, Mapping, Optional, Protocol, Sequence, Set, Tuple,
    TypeVar,
)

from progressistad import contract
from progressistad.core import wirejson

RATE_SMOOTHING = 0.3
"""Weight of the newest sample in the moving averages behind `rate` (tqdm's default)."""
FIRST_SAMPLE_WEIGHT = 1.0
"""Weight of a run's first sample: the averages start at it."""
RATE_STATE = ("_sample_n", "_sample_t", "_avg_dn", "_avg_dt", "_weight")
"""A task's state behind `rate`: the last sample (n, time), the averages, the sample's weight."""
APPLIED_FIELDS = tuple(name for name in contract.EVENT_FIELDS if name not in ("task_id", "status"))
"""Event fields a task takes as they come; one absent from an event keeps its value."""


class CapacityError(Exception):
    """Applying the events would exceed `max_tasks` and no finished task can be evicted."""

    def __init__(self, needed: int, max_tasks: int) -> None:
        super().__init__(
            f"task limit reached: {needed} new task(s) do not fit in max-tasks={max_tasks}"
            " and no finished task can be evicted"
        )
        self.needed = needed
        self.max_tasks = max_tasks


@dataclass
class Changes:
    """Task ids a mutation created or modified (`upserted`) and removed (`removed`)."""

    upserted: Set[str] = field(default_factory=set)
    removed: Set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.upserted or self.removed)

    def add_upsert(self, task_id: str) -> None:
        self.upserted.add(task_id)
        self.removed.discard(task_id)

    def add_removal(self, task_id: str) -> None:
        self.removed.add(task_id)
        self.upserted.discard(task_id)

    def merge(self, other: "Changes") -> None:
        """Apply `other`'s upserts then its removals, as set operations (the hot path of publish)."""
        self.upserted |= other.upserted
        self.removed -= other.upserted
        self.removed |= other.removed
        self.upserted -= other.removed


QUEUE_ACTIVE = "active"
QUEUE_FINISHED = "finished"
QUEUE_STALE = "stale"
SWEEP_QUEUES = (QUEUE_ACTIVE, QUEUE_STALE, QUEUE_FINISHED)


_QUEUE_OF_STATUS = {
    **dict.fromkeys(contract.ACTIVE_STATUSES, QUEUE_ACTIVE),
    **dict.fromkeys(contract.FINISHED_STATUSES, QUEUE_FINISHED),
    contract.STALE: QUEUE_STALE,
}


def sweep_queue(status: str) -> str:
    """The sweep queue a task with `status` waits in: the rules that can touch it differ."""
    return _QUEUE_OF_STATUS[status]


SWEEP_KEEP = "keep"
SWEEP_STALE = "stale"
SWEEP_REMOVE = "remove"

SweepRule = Tuple[float, str]
"""(idle seconds past which it applies, the action): one rule of a sweep queue."""


@dataclass(frozen=True)
class SweepPolicy:
    """What a cleanup sweep does; a value of 0 disables that rule."""

    retention_seconds: float = 86400.0
    stale_seconds: float = 0.0
    max_task_age: float = 0.0

    def rules(self, queue: str) -> Tuple[SweepRule, ...]:
        """The rules that may act on a task in sweep `queue`, the first that applies wins;
        disabled ones are left out."""
        rules = {
            QUEUE_ACTIVE: ((self.max_task_age, SWEEP_REMOVE), (self.stale_seconds, SWEEP_STALE)),
            QUEUE_FINISHED: ((self.max_task_age, SWEEP_REMOVE),
                             (self.retention_seconds, SWEEP_REMOVE)),
            QUEUE_STALE: ((self.max_task_age, SWEEP_REMOVE),),
        }[queue]
        return tuple(rule for rule in rules if rule[0] > 0)

    def horizon(self, queue: str) -> Optional[float]:
        """Idle time below which no rule touches a task in sweep `queue`, or None when none can."""
        limits = [seconds for seconds, _ in self.rules(queue)]
        return min(limits) if limits else None


def first_action(rules: Sequence[SweepRule], idle: float) -> str:
    """What the first of `rules` that applies to a task idle `idle` seconds does, else keep."""
    for seconds, action in rules:
        if idle > seconds:
            return action
    return SWEEP_KEEP


def sweep_action(status: str, idle: float, policy: SweepPolicy) -> str:
    """Decide what a sweep does to a task with `status` that has been idle `idle` seconds."""
    return first_action(policy.rules(_QUEUE_OF_STATUS[status]), idle)


class EntryCache:
    """A task's served form as a JSON "tasks" entry (`wirejson.entry`), made once until the
    task changes (its `_entry` reset to None)."""

    __slots__ = ()

    def entry(self) -> str:
        if self._entry is None:
            self._entry = wirejson.entry(self.task_id, self.to_wire())
        return self._entry


class Task(EntryCache):
    """One task's state: the event fields, timestamps, and the smoothing state behind `rate`."""

    __slots__ = contract.TASK_FIELDS + RATE_STATE + ("_entry", "annotation")

    def __init__(self, task_id: str, now: float) -> None:
        self.task_id = task_id
        self.desc: Optional[str] = None
        self.total: Optional[float] = None
        self.n: float = 0
        self.unit: Optional[str] = None
        self.status = contract.START
        self.timestamp: Optional[float] = None
        self.meta: Optional[Dict[str, Any]] = None
        self.created_at = now
        self.updated_at = now
        self.done_at: Optional[float] = None
        self.stale_at: Optional[float] = None
        self.rate: Optional[float] = None
        self.eta: Optional[float] = None
        self._sample_n: float = 0
        self._sample_t = now
        self._avg_dn: Optional[float] = None
        self._avg_dt: Optional[float] = None
        self._weight = FIRST_SAMPLE_WEIGHT
        self._entry: Optional[str] = None
        self.annotation: Optional[Dict[str, Any]] = None
        """Fields served besides the task's own (`annotate`), or None."""

    def to_wire(self) -> Dict[str, Any]:
        """The task as served: every field of `contract.TASK_FIELDS`, and its annotation's."""
        wire = {name: getattr(self, name) for name in contract.TASK_FIELDS}
        if self.annotation is not None:
            wire.update(self.annotation)
        return wire

    def annotate(self, fields: Mapping[str, Any]) -> bool:
        """Serve `fields` besides the task's own (none: stop); True when that changed them."""
        annotation = dict(fields) or None
        if annotation == self.annotation:
            return False
        self.annotation = annotation
        self._entry = None
        return True

    def cached_entry(self) -> Optional[str]:
        """The entry if one was made since the task last changed, else None."""
        return self._entry

    @classmethod
    def from_wire(cls, data: Mapping[str, Any], now: float) -> "Task":
        """Rebuild a task from its served form (a state file entry); unknown keys are dropped.

        A field missing from `data` takes the value a new task at `now` has.
        """
        # Field by field rather than __init__ then a setattr loop: every task a start
        # restores comes through here (bench/startup.py measures a start with many).
        get = data.get
        task = cls.__new__(cls)
        task.task_id = str(data["task_id"])
        task.desc = get("desc")
        task.total = get("total")
        n = get("n")
        task.n = n if n is not None else 0
        task.unit = get("unit")
        task.status = get("status", contract.START)
        task.timestamp = get("timestamp")
        task.meta = get("meta")
        task.created_at = get("created_at", now)
        task.updated_at = get("updated_at", now)
        task.done_at = get("done_at")
        task.stale_at = get("stale_at")
        task.rate = get("rate")
        task.eta = get("eta")
        task._sample_n = task.n
        task._sample_t = task.updated_at
        task._avg_dn = task._avg_dt = None
        task._weight = FIRST_SAMPLE_WEIGHT
        task._entry = None
        task.annotation = None
        return task

    def apply(self, event: Mapping[str, Any], now: float) -> None:
        """Apply one validated event; fields missing from it keep their values."""
        self._entry = None
        status = event.get("status", contract.DEFAULT_EVENT_STATUS)
        was_finished = self.status in contract.FINISHED_STATUSES
        if status == contract.START and was_finished:
            self._restart(now)
        for name in APPLIED_FIELDS:
            if name in event:
                setattr(self, name, event[name])
        self.status = status
        self.updated_at = now
        self.stale_at = None
        if status not in contract.FINISHED_STATUSES:
            self.done_at = None
        elif not was_finished:
            self.done_at = now
        self._update_rate(now)

    def mark_stale(self, now: float) -> None:
        self._entry = None
        self.status = contract.STALE
        self.stale_at = now
        self.eta = None

    def _restart(self, now: float) -> None:
        """A `start` after close/error begins a new run of the same task id."""
        self.created_at = now
        self._reset_rate(now)

    def _reset_rate(self, now: float) -> None:
        self._sample_n = self.n
        self._sample_t = now
        self._avg_dn = self._avg_dt = None
        self.rate = None

    def _update_rate(self, now: float) -> None:
        """Smoothed units per second: moving averages of progress and time between samples.

        Events arriving at the same instant (one batch) fold into the sample taken at
        that instant; the averages are linear in the sample, so this adds to them.
        """
        if self.n < self._sample_n:
            self._reset_rate(now)
        dn = self.n - self._sample_n
        dt = now - self._sample_t
        if dt > 0:
            self._weight = FIRST_SAMPLE_WEIGHT if self._avg_dn is None else RATE_SMOOTHING
            self._avg_dn = self._weight * dn + (1 - self._weight) * (self._avg_dn or 0.0)
            self._avg_dt = self._weight * dt + (1 - self._weight) * (self._avg_dt or 0.0)
        elif self._avg_dn is not None and dn:
            self._avg_dn += self._weight * dn
        else:
            self.eta = self._estimate_eta()
            return
        self.rate = _finite_or_none(self._avg_dn / self._avg_dt)
        self._sample_n = self.n
        self._sample_t = now
        self.eta = self._estimate_eta()

    def _estimate_eta(self) -> Optional[float]:
        if self.status not in contract.ACTIVE_STATUSES or self.total is None:
            return None
        remaining = self.total - self.n
        if remaining <= 0:
            return 0.0
        if not self.rate or self.rate <= 0:
            return None
        return _finite_or_none(remaining / self.rate)


def _finite_or_none(value: float) -> Optional[float]:
    """Counts near the float limit overflow a ratio; JSON has no Infinity, so say nothing."""
    return value if math.isfinite(value) else None


_BY_LAST_UPDATE = operator.attrgetter("updated_at")

class ReadableTask(Protocol):
    """What readers use of a task: a `Task`, or a mirror's copy of a shared store's task."""

    @property
    def status(self) -> str: ...

    def to_wire(self) -> Dict[str, Any]: ...

    def entry(self) -> str:
        """The served form as a JSON "tasks" entry (`wirejson.entry`)."""


T = TypeVar("T", bound=ReadableTask)


class TaskReader(Generic[T]):
    """What the hub, /health and /metrics read of the tasks, by id: the store and a daemon's
    mirror of a shared store both serve it."""

    def __init__(self) -> None:
        self._tasks: Dict[str, T] = {}

    def __len__(self) -> int:
        return len(self._tasks)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._tasks

    def get(self, task_id: str) -> Optional[T]:
        return self._tasks.get(task_id)

    def snapshot(self, statuses: Optional[Iterable[str]] = None) -> Dict[str, Dict[str, Any]]:
        """Served form of every task, optionally only those with one of `statuses`."""
        wanted = None if statuses is None else frozenset(statuses)
        return {
            task_id: task.to_wire()
            for task_id, task in self._tasks.items()
            if wanted is None or task.status in wanted
        }

    def snapshot_json(self) -> str:
        """Every task's served form as one JSON "tasks" object, made of the tasks' entries."""
        return wirejson.tasks_object(task.entry() for task in self._tasks.values())

    def counts_by_status(self) -> Dict[str, int]:
        counts = dict.fromkeys(contract.STATUSES, 0)
        for task in self._tasks.values():
            counts[task.status] = counts.get(task.status, 0) + 1
        return counts


class TaskStore(TaskReader[Task]):
    """Every task, and per sweep queue its tasks in order of last update.

    A sweep reads each queue from its idle end and stops at the first task no rule
    touches yet, and every task it reads leaves its queue (marked stale or removed): a
    sweep costs what it does, not the number of tasks kept.
    """

    def __init__(self, max_tasks: int = 10000) -> None:
        super().__init__()
        self.max_tasks = max_tasks
        self._queues: Dict[str, Dict[str, Task]] = {queue: {} for queue in SWEEP_QUEUES}
        self._finished = self._queues[QUEUE_FINISHED]
        """Finished tasks, least recently updated first: also the eviction order."""

    def __iter__(self) -> Iterator[Task]:
        return iter(list(self._tasks.values()))

    def apply(self, events: Sequence[Mapping[str, Any]], now: float) -> Changes:
        """Apply validated events in order, all or none; raise CapacityError when they do not fit."""
        changes = Changes()
        self._make_room({event["task_id"] for event in events}, changes)
        for event in events:
            task_id = event["task_id"]
            task = self._detach(task_id) or Task(task_id, now)
            task.apply(event, now)
            self._insert(task)
            changes.add_upsert(task_id)
        return changes

    def annotate(self, task_id: str, **fields: Any) -> Changes:
        """Serve `fields` on a task besides its own, until annotated again (no fields: none).

        The seam for what other parts derive about a task (the history's expectation), kept
        apart from the event rules: an annotation survives events and goes with the task.
        """
        task = self._tasks.get(task_id)
        changes = Changes()
        if task is not None and task.annotate(fields):
            changes.add_upsert(task_id)
        return changes

    def annotation(self, task_id: str) -> Optional[Mapping[str, Any]]:
        """The fields `annotate` gave a task, or None."""
        task = self._tasks.get(task_id)
        return None if task is None else task.annotation

    def remove(self, task_id: str) -> Changes:
        changes = Changes()
        if self._detach(task_id) is not None:
            changes.add_removal(task_id)
        return changes

    def remove_where(
        self,
        now: float,
        statuses: Optional[Iterable[str]] = None,
        older_than: Optional[float] = None,
    ) -> Changes:
        """Remove tasks with one of `statuses` (any when None) idle more than `older_than` seconds."""
        wanted = None if statuses is None else frozenset(statuses)
        doomed = [
            task_id
            for task_id, task in self._tasks.items()
            if (wanted is None or task.status in wanted)
            and (older_than is None or now - task.updated_at > older_than)
        ]
        changes = Changes()
        for task_id in doomed:
            changes.merge(self.remove(task_id))
        return changes

    def sweep(self, now: float, policy: SweepPolicy, limit: Optional[int] = None) -> Changes:
        """Mark idle active tasks stale and remove expired ones, as `policy` says.

        With `limit`, act on at most that many tasks: a caller that gets `limit` changes
        back calls again (after letting other work run) until it gets fewer.
        """
        budget = len(self._tasks) if limit is None else limit
        stale: List[Task] = []
        doomed: List[Task] = []
        for queue in SWEEP_QUEUES:
            horizon = policy.horizon(queue)
            if horizon is not None and budget > 0:
                budget -= self._collect_due(queue, now, horizon, policy.rules(queue), budget,
                                            stale, doomed)
        # Ids are collected in lists and the sets built once: a sweep that finds every
        # task due must stay within its budget (bench/costs.py measures it, bench/run.py
        # states the target).
        active, stale_queue = self._queues[QUEUE_ACTIVE], self._queues[QUEUE_STALE]
        for task in stale:
            del active[task.task_id]
            task.mark_stale(now)
            stale_queue[task.task_id] = task
        for task in doomed:
            self._detach(task.task_id)
        return Changes(upserted={t.task_id for t in stale}, removed={t.task_id for t in doomed})

    def _collect_due(self, queue: str, now: float, horizon: float, rules: Sequence[SweepRule],
                     budget: int, stale: List[Task], doomed: List[Task]) -> int:
        """Append up to `budget` tasks of `queue` that one of `rules` touches; return how many."""
        taken = 0
        for task in self._queues[queue].values():
            idle = now - task.updated_at
            if idle <= horizon:
                break
            action = first_action(rules, idle)
            if action == SWEEP_STALE:
                stale.append(task)
            elif action == SWEEP_REMOVE:
                doomed.append(task)
            else:
                continue  # not counted: a stepped sweep must never come back full of kept tasks
            taken += 1
            if taken == budget:
                break
        return taken

    def load(self, tasks: Iterable[Task]) -> None:
        """Add tasks restored from disk, keeping the order of their last update.

        A restored stale task may be more recent than an active one that a later sweep
        marks stale behind it; max-task-age then removes the older no earlier than the newer.
        """
        for task in sorted(tasks, key=_BY_LAST_UPDATE):
            self._detach(task.task_id)
            self._insert(task)

    def _insert(self, task: Task) -> None:
        """Put `task` at the recent end of the store and of its sweep queue."""
        self._tasks[task.task_id] = task
        self._queues[_QUEUE_OF_STATUS[task.status]][task.task_id] = task

    def _detach(self, task_id: str) -> Optional[Task]:
        """Take a task out of the store and its sweep queue; None when there is none."""
        task = self._tasks.pop(task_id, None)
        if task is not None:
            del self._queues[_QUEUE_OF_STATUS[task.status]][task_id]
        return task

    def _make_room(self, task_ids: Set[str], changes: Changes) -> None:
        needed = len(self._tasks) + sum(1 for t in task_ids if t not in self._tasks) - self.max_tasks
        if needed <= 0:
            return
        victims: List[str] = []
        for task_id in self._finished:
            if len(victims) == needed:
                break
            if task_id not in task_ids:
                victims.append(task_id)
        if len(victims) < needed:
            raise CapacityError(needed, self.max_tasks)
        for task_id in victims:
            changes.merge(self.remove(task_id))
