"""Telemetry a task holds in memory: its log tail, the series behind its sparklines, and the
accounting of the bytes both hold against the telemetry budget. Pure: `now` is an argument.

Series take a point when asked (once per broadcast flush) and keep at most
SERIES_MAX_POINTS: when full, every other point goes and the stride (samples per
point kept) doubles, so a series always spans the whole run at a resolution that
halves as it ages. Byte counts are estimates of what the objects hold, cheap
enough to keep up to date on every event (bench/costs.py measures the cost).
"""

from __future__ import annotations

import math
import sys
from array import array
from collections import OrderedDict, deque
from typing import Any, Dict, Iterable, List, Mapping, Optional

from progressistad import contract

DEFAULT_BUDGET_BYTES = 64 * 1024 * 1024
"""Default of --telemetry-budget-bytes: series and tails of every task together."""

_NAN = math.nan
_TAIL_LINES = contract.LOG_TAIL_LINES
_getsizeof = sys.getsizeof
_TAIL_OVERHEAD = 64 + _getsizeof(deque(maxlen=_TAIL_LINES)) + 8 * _TAIL_LINES
"""The LogTail, its empty deque and the slot of each line the deque can hold, so that a line
counts only what its str holds."""


class LogTail:
    """The last LOG_TAIL_LINES lines of a task's log, oldest first, and the bytes they hold."""

    __slots__ = ("lines", "bytes")

    def __init__(self, lines: Iterable[str] = ()) -> None:
        self.lines: deque = deque(maxlen=_TAIL_LINES)
        self.bytes = _TAIL_OVERHEAD
        self.extend(lines)

    def __len__(self) -> int:
        return len(self.lines)

    def extend(self, lines: Iterable[str]) -> None:
        kept = self.lines
        size = self.bytes
        for line in lines:
            if len(kept) == _TAIL_LINES:
                size -= _getsizeof(kept[0])
            kept.append(line)
            size += _getsizeof(line)
        self.bytes = size

    def last(self) -> Optional[str]:
        return self.lines[-1] if self.lines else None


class Series:
    """Points of a task's `n`, `rate` and each metric it has, with their times."""

    __slots__ = ("rows", "metrics", "stride", "_skipped")

    def __init__(self) -> None:
        self.rows = array("d")
        """`t`, `n` and `rate` of each point, one point after another (one array, not three:
        a series is held by every task)."""
        self.metrics: Optional[Dict[str, array]] = None
        """Each metric's points, by key; None while the task has none."""
        self.stride = 1
        """Samples per point kept; doubles each time the series is thinned."""
        self._skipped = 0
        """Samples since the last point kept."""

    def __len__(self) -> int:
        return len(self.rows) // _ROW

    def sample(self, now: float, n: float, rate: Optional[float],
               metrics: Optional[Mapping[str, float]]) -> None:
        """Take one sample; one in `stride` becomes a point."""
        if self._skipped + 1 < self.stride:
            self._skipped += 1
            return
        self._skipped = 0
        if len(self) == contract.SERIES_MAX_POINTS:
            self._thin()
        points = len(self)
        rows = self.rows
        rows.append(now)
        rows.append(n)
        rows.append(_NAN if rate is None else rate)
        if metrics or self.metrics:
            self._sample_metrics(points, metrics or {})

    def _sample_metrics(self, points: int, metrics: Mapping[str, float]) -> None:
        held = self.metrics
        if held is None:
            held = self.metrics = {}
        if held.keys() != metrics.keys():
            # A key the task no longer has loses its series: the keys held stay those of the
            # task now, at most METRICS_MAX_KEYS whatever the keys it had over its life.
            for key in [key for key in held if key not in metrics]:
                del held[key]
            for key in metrics:
                if key not in held:
                    held[key] = array("d", [_NAN]) * points
        for key, value in metrics.items():
            held[key].append(value)
        if not held:
            self.metrics = None

    def _thin(self) -> None:
        """Drop every other point (the oldest stays) and double the stride."""
        rows = self.rows
        kept = array("d", bytes(rows.itemsize * _ROW * ((len(self) + 1) // 2)))
        for column in range(_ROW):
            kept[column::_ROW] = rows[column::2 * _ROW]
        self.rows = kept
        for values in (self.metrics or {}).values():
            del values[1::2]
        self.stride *= 2

    def bytes(self) -> int:
        held = _SERIES_OVERHEAD + len(self.rows) * 8
        if self.metrics is not None:
            held += _METRICS_OVERHEAD + len(self.metrics) * (_KEY_OVERHEAD + len(self) * 8)
        return held

    def to_wire(self) -> Dict[str, Any]:
        """`t`, `n`, `rate` and `metrics` as GET /tasks/{id}/series serves them (no value: null)."""
        rows = self.rows
        return {
            "t": rows[0::_ROW].tolist(),
            "n": rows[1::_ROW].tolist(),
            "rate": _with_nulls(rows[2::_ROW]),
            "metrics": {key: _with_nulls(values) for key, values in (self.metrics or {}).items()},
        }


_ROW = 3
"""Values of a point in `Series.rows`: t, n, rate."""
_SERIES_OVERHEAD = _getsizeof(Series()) + _getsizeof(array("d"))
_METRICS_OVERHEAD = _getsizeof({})
_KEY_OVERHEAD = _getsizeof(array("d")) + 64
"""A metric's array, its key and its slot in the dict of arrays."""

EMPTY_SERIES_WIRE: Dict[str, Any] = {"t": [], "n": [], "rate": [], "metrics": {}}


def _with_nulls(values: array) -> List[Optional[float]]:
    return [None if value != value else value for value in values]


class HeldBytes:
    """Bytes of one kind (tails, or series) held per task, least recently updated first."""

    def __init__(self) -> None:
        self.total = 0
        self._by_task: "OrderedDict[str, int]" = OrderedDict()

    def __len__(self) -> int:
        return len(self._by_task)

    def touch(self, task_id: str, size: int) -> None:
        """`task_id` was updated and now holds `size` bytes: it becomes the most recent."""
        by_task = self._by_task
        self.total += size - by_task.get(task_id, 0)
        by_task[task_id] = size
        by_task.move_to_end(task_id)

    def discard(self, task_id: str) -> None:
        self.total -= self._by_task.pop(task_id, 0)

    def pop_oldest(self) -> str:
        """Forget the least recently updated task and return its id."""
        task_id, size = self._by_task.popitem(last=False)
        self.total -= size
        return task_id


class SeriesBook:
    """Series by task id, for tasks held elsewhere (a shared store's mirror), within a budget:
    beyond it the series of the least recently sampled tasks go first, as in TaskStore."""

    def __init__(self, budget_bytes: int = DEFAULT_BUDGET_BYTES) -> None:
        self.budget_bytes = budget_bytes
        self.trimmed = 0
        """Bytes of series dropped for the budget since the start."""
        self._series: Dict[str, Series] = {}
        self._runs: Dict[str, float] = {}
        """The `created_at` each series began with: a task's new run begins a new series."""
        self._held = HeldBytes()

    @property
    def bytes(self) -> int:
        return self._held.total

    def sample(self, task_id: str, now: float, wire: Mapping[str, Any]) -> None:
        """One sample of a task as served (`wire`)."""
        series = self._series.get(task_id)
        if series is None or self._runs[task_id] != wire["created_at"]:
            series = self._series[task_id] = Series()
            self._runs[task_id] = wire["created_at"]
        series.sample(now, wire["n"], wire["rate"], wire["metrics"])
        self._held.touch(task_id, series.bytes())

    def trim(self) -> None:
        held = self._held
        before = held.total
        while held.total > self.budget_bytes and held:
            self._forget(held.pop_oldest())
        self.trimmed += before - held.total

    def discard(self, task_id: str) -> None:
        if task_id in self._series:
            self._forget(task_id)
            self._held.discard(task_id)

    def _forget(self, task_id: str) -> None:
        del self._series[task_id], self._runs[task_id]

    def to_wire(self, task_id: str) -> Dict[str, Any]:
        """A task's series as GET /tasks/{id}/series serves it, without its id."""
        series = self._series.get(task_id)
        return EMPTY_SERIES_WIRE if series is None else series.to_wire()
