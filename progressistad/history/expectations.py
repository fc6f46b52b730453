"""Expectations: how long a job's runs usually take, and when an active task is overdue.

Pure: `now` is an argument. Figures are nearest-rank statistics over a job's
last `WINDOW` close runs; `Expectations` keeps them per job, updated as runs
arrive and loaded from the history for jobs it has not seen, so that asking
for one costs a dictionary lookup.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Set, Tuple

from progressistad import contract

WINDOW = 20
"""Close runs of a job the figures are taken over, the most recent."""
MIN_RUNS = 3
"""Close runs a job needs before its tasks are given an expectation."""
DEFAULT_OVERDUE_FACTOR = 1.5
REFRESH_SECONDS = 60.0
"""Age after which a job's close runs are read again (other daemons of a group add runs)."""
RETRY_SECONDS = 10.0
"""Wait before asking again for a job whose close runs could not be read."""
MAX_JOBS = 10000
"""Jobs kept; the least recently asked for is dropped first and read again when asked."""

Closed = Tuple[float, str, float]
"""A close run as the figures need it: (ended_at, id, duration)."""


def nearest_rank(ordered: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile `fraction` (0 < fraction <= 1) of ascending `ordered`."""
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]


class Figures(NamedTuple):
    """A job's nearest-rank median and 90th percentile, over `runs` close runs."""

    median: float
    p90: float
    runs: int


def figures(durations: Iterable[float]) -> Optional[Figures]:
    """The figures of some close runs' durations; None for none."""
    ordered = sorted(durations)
    if not ordered:
        return None
    return Figures(nearest_rank(ordered, 0.5), nearest_rank(ordered, 0.9), len(ordered))


def overdue(elapsed: float, p90: float, factor: float = DEFAULT_OVERDUE_FACTOR) -> bool:
    """A run is overdue once it has run longer than `factor` times its job's 90th percentile."""
    return elapsed > factor * p90


class Expectation(NamedTuple):
    """What an active task of a job with enough close runs is served with."""

    expected_duration: float
    """The median of the job's last close runs."""
    p90: float
    overdue_after: float
    """Seconds of running after which a run of the job is overdue."""


def closed(run: Mapping[str, Any]) -> Closed:
    return (run["ended_at"], run["id"], run["duration"])


def latest(closes: Iterable[Closed]) -> List[Closed]:
    """The `WINDOW` most recent of some close runs, newest first, each once."""
    return sorted(set(closes), reverse=True)[:WINDOW]


class _Job:
    __slots__ = ("closes", "expectation", "loaded_at", "asked_at")

    def __init__(self, asked_at: float) -> None:
        self.closes: List[Closed] = []
        self.expectation: Optional[Expectation] = None
        self.loaded_at: Optional[float] = None
        self.asked_at = asked_at


class Expectations:
    """Per job, its last close runs and the expectation they give.

    `get` names the jobs whose runs it lacks or holds for too long in `wanted`;
    the owner reads them from the history and hands them to `load`.
    """

    def __init__(self, factor: float = DEFAULT_OVERDUE_FACTOR, *, max_jobs: int = MAX_JOBS,
                 refresh_seconds: float = REFRESH_SECONDS,
                 retry_seconds: float = RETRY_SECONDS) -> None:
        self.factor = factor
        self.max_jobs = max_jobs
        self.refresh_seconds = refresh_seconds
        self.retry_seconds = retry_seconds
        self.wanted: Set[str] = set()
        self._jobs: "OrderedDict[str, _Job]" = OrderedDict()

    def __len__(self) -> int:
        return len(self._jobs)

    def get(self, job: str, now: float) -> Optional[Expectation]:
        """The job's expectation, or None while it has fewer than `MIN_RUNS` close runs."""
        entry = self._jobs.get(job)
        if entry is None:
            entry = self._entry(job, now)
            self.wanted.add(job)
            return None
        self._jobs.move_to_end(job)
        if entry.loaded_at is None:
            if now - entry.asked_at > self.retry_seconds:
                entry.asked_at = now
                self.wanted.add(job)
        elif now - entry.loaded_at > self.refresh_seconds:
            entry.loaded_at = now
            self.wanted.add(job)
        return entry.expectation

    def take_wanted(self) -> Set[str]:
        wanted, self.wanted = self.wanted, set()
        return wanted

    def add(self, run: Mapping[str, Any], now: float) -> None:
        """Count a run as it is recorded; only close runs change the figures."""
        if run["status"] != contract.CLOSE:
            return
        entry = self._jobs.get(run["job"])
        if entry is None:
            entry = self._entry(run["job"], now)
            self.wanted.add(run["job"])
        added, closes = closed(run), entry.closes
        if not closes or added > closes[0]:
            # The usual case, a run that just ended: no sort (bench/history.py's ingest rows).
            self._store(entry, [added] + closes[:WINDOW - 1])
        else:
            self._set(entry, closes + [added])

    def load(self, job: str, closes: Iterable[Closed], now: float) -> None:
        """The job's most recent close runs as the history holds them (any order)."""
        entry = self._jobs.get(job) or self._entry(job, now)
        entry.loaded_at = now
        self._set(entry, entry.closes + list(closes))

    def forget(self, job: Optional[str] = None) -> None:
        """Drop one job's runs, or every job's, after runs were deleted; read again when asked."""
        if job is None:
            self._jobs.clear()
        else:
            self._jobs.pop(job, None)

    def _entry(self, job: str, now: float) -> _Job:
        entry = self._jobs[job] = _Job(now)
        if len(self._jobs) > self.max_jobs:
            self._jobs.popitem(last=False)
        return entry

    def _set(self, entry: _Job, closes: Iterable[Closed]) -> None:
        self._store(entry, latest(closes))

    def _store(self, entry: _Job, closes: List[Closed]) -> None:
        """Keep `closes` (at most WINDOW, newest first, each once) and the figures they give."""
        entry.closes = closes
        found = figures(duration for _, _, duration in closes)
        entry.expectation = None if found is None or found.runs < MIN_RUNS else Expectation(
            found.median, found.p90, self.factor * found.p90)
