"""The pure task store: apply events, sweep for stale and expired tasks, delete.

No I/O, no clock and no framework: every method that depends on time takes
`now` (epoch seconds) and every mutation returns the `Changes` it made, so the
caller decides what to publish and persist.
"""

from __future__ import annotations

import heapq
import math
import operator
from array import array
from dataclasses import dataclass, field
from typing import (
    Any, Dict, Generic, Iterable, Iterator, List, Mapping, Optional, Protocol, Sequence, Set, Tuple,
    TypeVar,
)

from progressistad import contract
from progressistad.core import wirejson
from progressistad.core.tasks_json import TasksJson
from progressistad.core.telemetry import (
    DEFAULT_BUDGET_BYTES, EMPTY_SERIES_WIRE, HeldBytes, LogTail, Series,
)

RATE_SMOOTHING = 0.3
"""Weight of the newest sample in the moving averages behind `rate` (tqdm's default)."""
FIRST_SAMPLE_WEIGHT = 1.0
"""Weight of a run's first sample: the averages start at it."""
RATE_STATE = ("_sample_n", "_sample_t", "_avg_dn", "_avg_dt", "_weight")
"""A task's state behind `rate`: the last sample (n, time), the averages, the sample's weight."""
APPLIED_FIELDS = tuple(name for name in contract.EVENT_FIELDS
                       if name not in ("task_id", "status", "metrics", "log"))
"""Event fields a task takes as they come; one absent from an event keeps its value. The
others: `metrics` merges into the task's, `log` goes to its tail."""


class CapacityError(Exception):
    """Applying the events would exceed `max_tasks` and no finished task can be evicted."""

    def __init__(self, needed: int, max_tasks: int) -> None:
        super().__init__(
            f"task limit reached: {needed} new task(s) do not fit in max-tasks={max_tasks}"
            " and no finished task can be evicted"
        )
        self.needed = needed
        self.max_tasks = max_tasks


class EventRefused(Exception):
    """An event breaks a rule that depends on its task's state, which validation at the edge
    cannot know (the metrics cap); nothing of its batch was applied."""

    def __init__(self, index: int, field: str, problem: str) -> None:
        super().__init__(f"event {index}: field {field!r}: {problem}")
        self.index = index
        """Position of the event in the batch given to `TaskStore.apply`."""
        self.field = field
        self.problem = problem


def too_many_metrics(index: int, count: int) -> EventRefused:
    """The refusal of event `index`, which would leave its task `count` metrics."""
    return EventRefused(index, "metrics", (
        f"the task would have {count} metrics after merging, at most"
        f" {contract.METRICS_MAX_KEYS}; a null value removes a key"))


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

CADENCE_GAPS = 8
"""Gaps between updates a task keeps for adaptive stale detection: the last ones."""
CADENCE_MIN_GAPS = 3
"""Gaps a task must have shown before its own cadence decides when it is stale."""
GAP_TYPECODE = "f"
"""Gaps are kept as 4-byte floats (the Redis scripts pack them so too): seconds need no more."""


def median(values: Sequence[float]) -> float:
    """The median of a few numbers: the middle one, or the mean of the middle two."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


@dataclass(frozen=True)
class SweepPolicy:
    """What a cleanup sweep does; a value of 0 disables that rule.

    With `stale_factor`, an active task that has shown at least CADENCE_MIN_GAPS gaps
    between updates is stale once idle longer than `stale_factor` times the median of its
    last CADENCE_GAPS gaps, and never sooner than `stale_min_seconds`; a task with fewer
    gaps follows `stale_seconds`.
    """

    retention_seconds: float = 86400.0
    stale_seconds: float = 0.0
    max_task_age: float = 0.0
    stale_factor: float = 0.0
    stale_min_seconds: float = 60.0

    @property
    def adapts(self) -> bool:
        """Whether each task's cadence sets when it is stale (tasks then keep their gaps)."""
        return self.stale_factor > 0

    def stale_after(self, gaps: Sequence[float] = ()) -> float:
        """Idle seconds past which an active task with these gaps is stale; 0: never."""
        if self.stale_factor > 0 and len(gaps) >= CADENCE_MIN_GAPS:
            return max(self.stale_factor * median(gaps), self.stale_min_seconds)
        return self.stale_seconds

    def rules(self, queue: str, gaps: Sequence[float] = ()) -> Tuple[SweepRule, ...]:
        """The rules that may act on a task in sweep `queue` (an active one with these gaps),
        the first that applies wins; disabled ones are left out."""
        if queue == QUEUE_ACTIVE:
            rules: Tuple[SweepRule, ...] = ((self.max_task_age, SWEEP_REMOVE),
                                            (self.stale_after(gaps), SWEEP_STALE))
        elif queue == QUEUE_FINISHED:
            rules = ((self.max_task_age, SWEEP_REMOVE), (self.retention_seconds, SWEEP_REMOVE))
        else:
            rules = ((self.max_task_age, SWEEP_REMOVE),)
        return tuple(rule for rule in rules if rule[0] > 0)

    def horizon(self, queue: str) -> Optional[float]:
        """Idle time below which no rule touches a task in sweep `queue`, or None when none can."""
        limits = [seconds for seconds, _ in self.rules(queue)]
        if queue == QUEUE_ACTIVE and self.adapts:
            limits.append(self.stale_min_seconds)
        return min(limits) if limits else None


def first_action(rules: Sequence[SweepRule], idle: float) -> str:
    """What the first of `rules` that applies to a task idle `idle` seconds does, else keep."""
    for seconds, action in rules:
        if idle > seconds:
            return action
    return SWEEP_KEEP


def sweep_action(status: str, idle: float, policy: SweepPolicy,
                 gaps: Sequence[float] = ()) -> str:
    """Decide what a sweep does to a task with `status` (and these gaps between its updates)
    that has been idle `idle` seconds."""
    return first_action(policy.rules(_QUEUE_OF_STATUS[status], gaps), idle)


def due_at(updated_at: float, rules: Sequence[SweepRule]) -> float:
    """When the first of `rules` will apply to a task last updated at `updated_at`."""
    return min((updated_at + seconds for seconds, _ in rules), default=math.inf)


def merge_metrics(metrics: Dict[str, float], update: Mapping[str, Optional[float]]) -> Dict[str, float]:
    """Merge an event's `metrics` into `metrics`, in place: each key takes its latest value,
    null removes it."""
    if None in update.values():
        for key, value in update.items():
            if value is None:
                metrics.pop(key, None)
            else:
                metrics[key] = value
    else:
        metrics.update(update)
    return metrics


class EntryCache:
    """A task's served form as a JSON "tasks" entry (`wirejson.entry`), made once until the
    task changes (its `_entry` reset to None)."""

    __slots__ = ()

    def entry(self) -> str:
        if self._entry is None:
            self._entry = wirejson.entry(self.task_id, self.to_wire())
        return self._entry


_DERIVED_FIELDS = ("last_log", "log_lines")
"""Served fields that a task's log tail gives."""
_STORED_FIELDS = tuple(name for name in contract.TASK_FIELDS if name not in _DERIVED_FIELDS)
_COPIED_FIELDS = frozenset(APPLIED_FIELDS)


class Task(EntryCache):
    """One task's state: the event fields, timestamps, the smoothing state behind `rate`, and
    its telemetry (log tail, series)."""

    __slots__ = _STORED_FIELDS + RATE_STATE + ("_entry", "_tail", "_series", "_gaps", "annotation")

    def __init__(self, task_id: str, now: float) -> None:
        self.task_id = task_id
        self.desc: Optional[str] = None
        self.total: Optional[float] = None
        self.n: float = 0
        self.unit: Optional[str] = None
        self.status = contract.START
        self.timestamp: Optional[float] = None
        self.meta: Optional[Dict[str, Any]] = None
        self.metrics: Optional[Dict[str, float]] = None
        self.postfix: Optional[str] = None
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
        self._tail: Optional[LogTail] = None
        self._series: Optional[Series] = None
        self._gaps: Optional["array[float]"] = None

    @property
    def last_log(self) -> Optional[str]:
        return None if self._tail is None else self._tail.last()

    @property
    def log_lines(self) -> int:
        return 0 if self._tail is None else len(self._tail)

    def log_tail(self) -> List[str]:
        """The lines the log tail keeps, oldest first (a copy)."""
        return [] if self._tail is None else list(self._tail.lines)

    def series_wire(self) -> Dict[str, Any]:
        """The series as GET /tasks/{id}/series serves it."""
        series = EMPTY_SERIES_WIRE if self._series is None else self._series.to_wire()
        return {"task_id": self.task_id, **series}

    def to_wire(self) -> Dict[str, Any]:
        """The task as served: every field of `contract.TASK_FIELDS`, and its annotation's."""
        wire = {name: getattr(self, name) for name in _STORED_FIELDS}
        if self.metrics is not None:
            # Merged in place (the cheaper on every event): a served form keeps its own copy,
            # since the state file's writer thread encodes it later.
            wire["metrics"] = dict(self.metrics)
        tail = self._tail
        wire["last_log"] = None if tail is None else tail.last()
        wire["log_lines"] = 0 if tail is None else len(tail)
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
        """Rebuild a task from its served form (a state file entry, which adds `log_tail`);
        unknown keys are dropped.

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
        metrics = get("metrics")
        # Merged in place later: a copy, not the dict the caller keeps (a state file's wire form).
        task.metrics = dict(metrics) if type(metrics) is dict and metrics else None
        task.postfix = get("postfix")
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
        lines = get("log_tail")
        task._tail = LogTail(lines) if lines else None
        task._series = None
        task._gaps = None
        return task

    def apply(self, event: Mapping[str, Any], now: float) -> None:
        """Apply one validated event; fields missing from it keep their values."""
        self._entry = None
        status = event.get("status", contract.DEFAULT_EVENT_STATUS)
        was_finished = self.status in contract.FINISHED_STATUSES
        if status == contract.START and was_finished:
            self._restart(now)
        for name, value in event.items():
            if name in _COPIED_FIELDS:
                setattr(self, name, value)
            elif name == "metrics":
                self._merge_metrics(value)
            elif name == "log" and value:
                if self._tail is None:
                    self._tail = LogTail()
                self._tail.extend(value)
        self.status = status
        self.updated_at = now
        self.stale_at = None
        if status not in contract.FINISHED_STATUSES:
            self.done_at = None
        elif not was_finished:
            self.done_at = now
        self._update_rate(now)

    def _merge_metrics(self, update: Mapping[str, Optional[float]]) -> None:
        metrics = self.metrics
        if metrics is not None and None not in update.values():
            metrics.update(update)  # merge_metrics without its call, for the common event
        elif update:
            self.metrics = merge_metrics(metrics if metrics is not None else {}, update) or None

    def note_gap(self, now: float) -> None:
        """Keep the time since the last update (before an event at `now` is applied)."""
        gap = now - self.updated_at
        if gap > 0:  # events of one instant (a batch) are one update
            gaps = self._gaps
            if gaps is None:
                self._gaps = array(GAP_TYPECODE, (gap,))
            else:
                gaps.append(gap)
                if len(gaps) > CADENCE_GAPS:
                    del gaps[0]

    @property
    def gaps(self) -> Sequence[float]:
        """The last gaps between this run's updates, oldest first (kept while they are needed)."""
        return () if self._gaps is None else self._gaps

    def mark_stale(self, now: float) -> None:
        self._entry = None
        self.status = contract.STALE
        self.stale_at = now
        self.eta = None

    def sample(self, now: float) -> int:
        """Take a sample for the series; returns the bytes the series holds."""
        if self._series is None:
            self._series = Series()
        self._series.sample(now, self.n, self.rate, self.metrics)
        return self._series.bytes()

    def drop_series(self) -> None:
        self._series = None

    def drop_tail(self) -> None:
        self._entry = None
        self._tail = None

    def _restart(self, now: float) -> None:
        """A `start` after close/error begins a new run of the same task id: its series begins
        again with it (metrics, postfix and log tail carry on, like the other fields)."""
        self.created_at = now
        self._reset_rate(now)
        self._gaps = None
        if self._series is not None:
            self._series = Series()

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
        self._json = TasksJson(self._tasks)

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

    def note(self, changes: Changes) -> None:
        """Hear of a change (the task service's `announce`, where every change passes), for
        `tasks_message`."""
        self._json.note(changes)

    def tasks_message(self, head: bytes, tail: bytes) -> bytes:
        """`head`, every task's served form as one JSON "tasks" object, `tail`: made of blocks
        of entries kept between changes (`TasksJson`)."""
        return self._json.message(head, tail)

    def snapshot_json(self, statuses: Optional[Iterable[str]] = None) -> str:
        """Every task's served form as one JSON "tasks" object, made of the tasks' entries;
        optionally only the tasks with one of `statuses`."""
        tasks: Iterable[T] = self._tasks.values()
        if statuses is not None:
            wanted = frozenset(statuses)
            tasks = (task for task in tasks if task.status in wanted)
        return wirejson.tasks_object([task.entry() for task in tasks])

    def counts_by_status(self) -> Dict[str, int]:
        counts = dict.fromkeys(contract.STATUSES, 0)
        for task in self._tasks.values():
            counts[task.status] = counts.get(task.status, 0) + 1
        return counts


TELEMETRY_KINDS = ("series", "tails")
"""What the telemetry budget holds, as /metrics labels it."""


class TaskStore(TaskReader[Task]):
    """Every task, and per sweep queue its tasks in order of last update.

    A sweep reads each queue from its idle end and stops at the first task no rule
    touches yet, and every task it reads leaves its queue (marked stale or removed): a
    sweep costs what it does, not the number of tasks kept. With adaptive stale
    detection an active task past its queue's horizon may not be due yet (its own
    cadence is slower): it is parked until the time its first rule applies, and taken
    back to its queue by its next event (or when the policy changes).

    Series and log tails together stay within `telemetry_budget_bytes`: beyond it the
    series of the least recently updated tasks go first, then their tails (a tail is
    what a finished job's owner comes back for, and it is kept in the state file). The
    order is that of the tasks' last sample or log line, which the hub's samples of every
    changed task keep within one broadcast flush of the order of last update.
    """

    def __init__(self, max_tasks: int = 10000,
                 telemetry_budget_bytes: int = DEFAULT_BUDGET_BYTES) -> None:
        super().__init__()
        self.max_tasks = max_tasks
        self.telemetry_budget_bytes = telemetry_budget_bytes
        self._queues: Dict[str, Dict[str, Task]] = {queue: {} for queue in SWEEP_QUEUES}
        self._finished = self._queues[QUEUE_FINISHED]
        """Finished tasks, least recently updated first: also the eviction order."""
        self._series_bytes = HeldBytes()
        self._tail_bytes = HeldBytes()
        self.telemetry_trimmed: Dict[str, int] = dict.fromkeys(TELEMETRY_KINDS, 0)
        """Bytes of series and of tails dropped for the budget since the start, by kind."""
        self.keeps_gaps = False
        """Whether events note their task's gaps between updates (`SweepPolicy.adapts`)."""
        self._parked: Dict[str, Tuple[Task, float]] = {}
        """Active tasks past the horizon that are not due yet, with the time they will be."""
        self._due: List[Tuple[float, str]] = []
        """A heap of (due time, id) of parked tasks; entries of tasks that left stay behind."""
        self._parked_by: Optional[SweepPolicy] = None
        """The policy the parked tasks' due times are of."""

    @property
    def telemetry_bytes(self) -> int:
        """Estimated bytes held in series and log tails, counted against the budget."""
        return self._series_bytes.total + self._tail_bytes.total

    def telemetry_held(self) -> Dict[str, int]:
        """Estimated bytes held now, by kind (`TELEMETRY_KINDS`)."""
        return {"series": self._series_bytes.total, "tails": self._tail_bytes.total}

    def __iter__(self) -> Iterator[Task]:
        return iter(list(self._tasks.values()))

    def apply(self, events: Sequence[Mapping[str, Any]], now: float) -> Changes:
        """Apply validated events in order, all or none; raise EventRefused when one would
        leave its task more than METRICS_MAX_KEYS metrics, CapacityError when they do not fit."""
        for event in events:
            if "metrics" in event:
                self._check_metrics(events)
                break
        changes = Changes()
        self._make_room({event["task_id"] for event in events}, changes)
        logged = False
        keeps_gaps = self.keeps_gaps
        for event in events:
            task_id = event["task_id"]
            task = self._detach(task_id) or Task(task_id, now)
            if keeps_gaps:
                task.note_gap(now)
            task.apply(event, now)
            self._insert(task)
            changes.add_upsert(task_id)
            if "log" in event and task._tail is not None:
                self._tail_bytes.touch(task_id, task._tail.bytes)
                logged = True
        if logged and self.telemetry_bytes > self.telemetry_budget_bytes:
            self._trim(changes)
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
    def _check_metrics(self, events: Sequence[Mapping[str, Any]]) -> None:
        """Raise EventRefused before anything changes when an event would leave its task more
        than METRICS_MAX_KEYS metrics.

        A task's keys plus every key the batch sent to it until then bound its count without
        merging anything; only a batch where a bound passes the cap is merged to know.
        """
        bounds: Dict[str, int] = {}
        tasks = self._tasks
        for event in events:
            update = event.get("metrics")
            if update is not None:
                task_id = event["task_id"]
                bound = bounds.get(task_id)
                if bound is None:
                    task = tasks.get(task_id)
                    bound = 0 if task is None or task.metrics is None else len(task.metrics)
                bound += len(update)
                if bound > contract.METRICS_MAX_KEYS:
                    self._check_metrics_exactly(events)
                    return
                bounds[task_id] = bound

    def _check_metrics_exactly(self, events: Sequence[Mapping[str, Any]]) -> None:
        latest: Dict[str, Dict[str, float]] = {}
        for index, event in enumerate(events):
            update = event.get("metrics")
            if update is None:
                continue
            task_id = event["task_id"]
            metrics = latest.get(task_id)
            if metrics is None:
                task = self._tasks.get(task_id)
                metrics = latest[task_id] = dict(task.metrics or {}) if task is not None else {}
            if len(merge_metrics(metrics, update)) > contract.METRICS_MAX_KEYS:
                raise too_many_metrics(index, len(metrics))

    def sample(self, now: float, task_ids: Iterable[str]) -> Changes:
        """Add a point to the series of each task of `task_ids` still held; the hub calls this
        once per broadcast flush with the tasks changed since the last.

        Returns the tasks whose served form changed: only the budget trims any, and only
        when the tails alone exceed it (after a restart with a smaller budget).
        """
        series_bytes, tail_bytes = self._series_bytes, self._tail_bytes
        for task_id in task_ids:
            task = self._tasks.get(task_id)
            if task is not None:
                series_bytes.touch(task_id, task.sample(now))
                if task._tail is not None:
                    tail_bytes.touch(task_id, task._tail.bytes)
        changes = Changes()
        if self.telemetry_bytes > self.telemetry_budget_bytes:
            self._trim(changes)
        return changes

    def _trim(self, changes: Changes) -> None:
        """Within the budget again: drop series, then tails, least recently updated first."""
        series_bytes, tail_bytes = self._series_bytes, self._tail_bytes
        budget = self.telemetry_budget_bytes
        held = series_bytes.total, tail_bytes.total
        while series_bytes.total + tail_bytes.total > budget and series_bytes:
            self._tasks[series_bytes.pop_oldest()].drop_series()
        while tail_bytes.total > budget and tail_bytes:
            task_id = tail_bytes.pop_oldest()
            self._tasks[task_id].drop_tail()
            changes.add_upsert(task_id)
        self.telemetry_trimmed["series"] += held[0] - series_bytes.total
        self.telemetry_trimmed["tails"] += held[1] - tail_bytes.total

    def remove(self, task_id: str) -> Changes:
        changes = Changes()
        if self._drop(task_id) is not None:
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
        parked: List[Task] = []
        if self._parked_by != policy:
            self._unpark_all()
        if self._parked:
            budget -= self._collect_parked(now, policy, budget, stale, doomed)
        for queue in SWEEP_QUEUES:
            horizon = policy.horizon(queue)
            if horizon is not None and budget > 0:
                budget -= self._collect_due(queue, now, horizon, policy, budget, stale, doomed,
                                            parked)
        # Ids are collected in lists and the sets built once: a sweep that finds every
        # task due must stay within its budget (bench/costs.py measures it, bench/run.py
        # states the target).
        active, stale_queue = self._queues[QUEUE_ACTIVE], self._queues[QUEUE_STALE]
        for task in parked:
            del active[task.task_id]
            self._park(task, due_at(task.updated_at, policy.rules(QUEUE_ACTIVE, task.gaps)))
        self._parked_by = policy
        for task in stale:
            if active.pop(task.task_id, None) is None:
                del self._parked[task.task_id]
            task.mark_stale(now)
            stale_queue[task.task_id] = task
        for task in doomed:
            self._drop(task.task_id)
        return Changes(upserted={t.task_id for t in stale}, removed={t.task_id for t in doomed})

    def _collect_due(self, queue: str, now: float, horizon: float, policy: SweepPolicy,
                     budget: int, stale: List[Task], doomed: List[Task],
                     parked: List[Task]) -> int:
        """Append up to `budget` tasks of `queue` that one of its rules touches; return how
        many. Tasks past the horizon that are not due yet go to `parked`."""
        taken = 0
        adapts = queue == QUEUE_ACTIVE and policy.adapts
        rules = policy.rules(queue)
        for task in self._queues[queue].values():
            idle = now - task.updated_at
            if idle <= horizon:
                break
            action = first_action(policy.rules(queue, task.gaps) if adapts else rules, idle)
            if action == SWEEP_STALE:
                stale.append(task)
            elif action == SWEEP_REMOVE:
                doomed.append(task)
            else:
                parked.append(task)  # not counted: a stepped sweep must never come back full
                continue
            taken += 1
            if taken == budget:
                break
        return taken

    def _collect_parked(self, now: float, policy: SweepPolicy, budget: int, stale: List[Task],
                        doomed: List[Task]) -> int:
        """Append up to `budget` parked tasks that are due at `now`; return how many."""
        due, parked = self._due, self._parked
        taken, again = 0, []
        while due and due[0][0] <= now and taken < budget:
            at, task_id = heapq.heappop(due)
            held = parked.get(task_id)
            if held is None or held[1] != at:
                continue  # it left (an event) or was parked again since
            task = held[0]
            action = sweep_action(task.status, now - task.updated_at, policy, task.gaps)
            if action == SWEEP_STALE:
                stale.append(task)
            elif action == SWEEP_REMOVE:
                doomed.append(task)
            else:  # a hair short of due: the sum rounded down
                again.append(task)
                continue
            taken += 1
        for task in again:
            self._park(task, math.nextafter(now, math.inf))
        return taken

    def _park(self, task: Task, at: float) -> None:
        self._parked[task.task_id] = (task, at)
        heapq.heappush(self._due, (at, task.task_id))
        if len(self._due) > 2 * len(self._parked) + 1024:
            self._due = [(at, task_id) for task_id, (_, at) in self._parked.items()]
            heapq.heapify(self._due)

    def _unpark_all(self) -> None:
        """Put parked tasks back at the idle end of the active queue: their due times are of
        another policy. They are older than any task of the queue, which they left idle."""
        if self._parked:
            queue = {task.task_id: task for task, _ in
                     sorted(self._parked.values(), key=lambda held: held[0].updated_at)}
            queue.update(self._queues[QUEUE_ACTIVE])
            self._queues[QUEUE_ACTIVE] = queue
        self._parked.clear()
        self._due = []

    def load(self, tasks: Iterable[Task]) -> None:
        """Add tasks restored from disk, keeping the order of their last update.

        A restored stale task may be more recent than an active one that a later sweep
        marks stale behind it; max-task-age then removes the older no earlier than the newer.
        Telemetry beyond the budget (a budget made smaller since the file was written) is
        trimmed by the next sample or log line, which report what it changed.
        """
        tail_bytes = self._tail_bytes
        for task in sorted(tasks, key=_BY_LAST_UPDATE):
            self._drop(task.task_id)
            self._insert(task)
            if task._tail is not None:
                tail_bytes.touch(task.task_id, task._tail.bytes)

    def _insert(self, task: Task) -> None:
        """Put `task` at the recent end of the store and of its sweep queue."""
        self._tasks[task.task_id] = task
        self._queues[_QUEUE_OF_STATUS[task.status]][task.task_id] = task

    def _detach(self, task_id: str) -> Optional[Task]:
        """Take a task out of the store and its sweep queue; None when there is none."""
        task = self._tasks.pop(task_id, None)
        if task is not None and self._queues[_QUEUE_OF_STATUS[task.status]].pop(
                task_id, None) is None:
            del self._parked[task_id]
        return task

    def _drop(self, task_id: str) -> Optional[Task]:
        """Remove a task, and its telemetry from the budget; None when there is none."""
        task = self._detach(task_id)
        if task is not None:
            if task._series is not None:
                self._series_bytes.discard(task_id)
            if task._tail is not None:
                self._tail_bytes.discard(task_id)
        return task

    def _make_room(self, task_ids: Set[str], changes: Changes) -> None:
        if len(self._tasks) + len(task_ids) <= self.max_tasks:
            return  # room even if every id is new: spares the count on the path of every event
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
