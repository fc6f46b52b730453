"""The history as the daemon uses it: record ended runs, answer the API, serve expectations.

`History` stands in front of one backend (SQLite or Redis) and the expectations
cache; every call is made on the IOLoop thread, and none of them waits on the
disk or the network except the awaited queries.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Protocol, Sequence, Set

from progressistad import contract
from progressistad.history import expectations, query, records
from progressistad.history.expectations import Expectation, Expectations
from progressistad.history.query import HistoryUnavailable
from progressistad.history.records import Run, Transition

log = logging.getLogger("progressistad.history")

DEFAULT_FILE_NAME = "history.sqlite3"
NO_EXPECTATION = {"expected_duration": None, "overdue": False}


class Backend(Protocol):
    """What a store of runs provides (`sqlite.SQLiteHistory`, `redis.RedisHistory`)."""

    retention_days: float

    def append(self, runs: Sequence[Run]) -> None: ...

    async def runs(self, query: query.RunQuery) -> Dict[str, Any]: ...

    async def jobs(self, query: query.JobQuery) -> Dict[str, Any]: ...

    async def closes(self, jobs: Iterable[str]) -> Dict[str, Any]: ...

    async def metrics(self, limit: int) -> Dict[str, Any]: ...

    async def delete(self, job: Optional[str], before: Optional[float]) -> int: ...

    async def maintain(self) -> int: ...

    def health(self) -> Dict[str, Any]: ...

    async def close(self) -> bool: ...


class History:
    """Ended runs in, queries and expectations out; `children` says whether child bars count."""

    def __init__(self, backend: Backend, clock: Callable[[], float], *,
                 overdue_factor: float = expectations.DEFAULT_OVERDUE_FACTOR,
                 children: bool = False) -> None:
        self.backend = backend
        self.children = children
        self._clock = clock
        self._expectations = Expectations(overdue_factor)
        self._loading: Optional["asyncio.Future[None]"] = None
        self.on_expectations: Optional[Callable[[Optional[Set[str]]], None]] = None
        """Told of the jobs whose close runs were read from the backend or deleted (None: every
        job's); a run recorded here changes its job's figures without a word (they are asked
        for, `expectation`, when they are needed)."""

    @property
    def overdue_factor(self) -> float:
        return self._expectations.factor

    def reconfigure(self, *, retention_days: float, overdue_factor: float) -> None:
        """Apply reloaded settings: retention from the next `maintain`, the factor at once."""
        self.backend.retention_days = retention_days
        self._expectations.factor = overdue_factor

    # ---- runs in

    def record(self, runs: Sequence[Run]) -> None:
        """Keep runs that ended (see `records`); never blocks."""
        if not runs:
            return
        now = self._clock()
        for run in runs:
            self._expectations.add(run, now)
        self.backend.append(runs)
        self._load_wanted()

    def observe(self, before: Optional[Mapping[str, Any]], after: Optional[Mapping[str, Any]],
                run_started_at: Optional[float], *, log_before: Sequence[str] = (),
                log_after: Sequence[str] = ()) -> Optional[float]:
        """Record the runs one change of a task ended (`records.ended_runs`); returns the task's
        new `run_started_at`."""
        transition: Transition = records.ended_runs(
            before, after, run_started_at, log_before=log_before, log_after=log_after,
            children=self.children)
        self.record(transition.runs)
        return transition.run_started_at

    # ---- expectations

    def expectation(self, job: str) -> Optional[Expectation]:
        """The job's expectation, or None while it has too few close runs; a dictionary lookup
        (a job not seen yet is read from the backend in the background)."""
        found = self._expectations.get(job, self._clock())
        self._load_wanted()
        return found

    def served_fields(self, task: Mapping[str, Any], run_started_at: Optional[float],
                      now: float) -> Dict[str, Any]:
        """`expected_duration` and `overdue` of a task as served (None and False unless it is
        active and its job has enough close runs)."""
        if not self.expects(task):
            return dict(NO_EXPECTATION)
        started = task["created_at"] if run_started_at is None else run_started_at
        return self.job_fields(records.job_of(task), started, now)

    def expects(self, task: Mapping[str, Any]) -> bool:
        """Whether a task (as served) is one an expectation is served on: active, and not a
        child bar unless children count."""
        return task["status"] in contract.ACTIVE_STATUSES and (
            self.children or not records.is_child(task))

    def job_fields(self, job: str, run_started_at: float, now: float) -> Dict[str, Any]:
        """`served_fields` of an active task of `job` whose run began at `run_started_at`."""
        found = self.expectation(job)
        if found is None:
            return dict(NO_EXPECTATION)
        return {"expected_duration": found.expected_duration,
                "overdue": expectations.overdue(now - run_started_at, found.p90,
                                                self._expectations.factor)}

    def _changed(self, jobs: Optional[Set[str]]) -> None:
        if self.on_expectations is not None and (jobs is None or jobs):
            self.on_expectations(jobs)

    def _load_wanted(self) -> None:
        if self._loading is None and self._expectations.wanted:
            self._loading = asyncio.ensure_future(self._load(self._expectations.take_wanted()))

    async def _load(self, jobs: Iterable[str]) -> None:
        try:
            found = await self.backend.closes(jobs)
        except HistoryUnavailable as exc:
            log.debug("close runs not read, asked again later: %s", exc)
            found = {}
        now = self._clock()
        for job, closes in found.items():
            self._expectations.load(job, closes, now)
        self._loading = None
        self._changed(set(found))
        self._load_wanted()

    # ---- the API

    async def runs(self, **arguments: Any) -> Dict[str, Any]:
        """GET /history (`query.run_query`'s arguments); raises QueryError, HistoryUnavailable."""
        return await self.backend.runs(query.run_query(**arguments))

    async def jobs(self, **arguments: Any) -> Dict[str, Any]:
        """GET /history/jobs (`query.job_query`'s arguments); raises QueryError, HistoryUnavailable."""
        return await self.backend.jobs(query.job_query(**arguments))

    async def delete(self, job: Optional[str] = None, older_than: Optional[float] = None) -> int:
        """DELETE /history: runs of `job` that ended more than `older_than` seconds ago (each
        filter optional); returns how many were removed."""
        job = query.run_query(job=job).job
        if older_than is not None and not (isinstance(older_than, (int, float))
                                           and older_than >= 0):
            raise query.QueryError("older_than", "older_than must be a number of seconds >= 0")
        before = None if older_than is None else self._clock() - older_than
        removed = await self.backend.delete(job, before)
        self._expectations.forget(job)
        self._changed(None if job is None else {job})
        return removed

    async def job_metrics(self, limit: int) -> Dict[str, Any]:
        """The first `limit` jobs by name with their figures by run status, for /metrics;
        raises HistoryUnavailable."""
        return await self.backend.metrics(limit)

    # ---- keeping it

    async def maintain(self) -> int:
        """Retention by age and count (call once per cleanup interval); runs removed."""
        try:
            return await self.backend.maintain()
        except HistoryUnavailable as exc:
            log.debug("history retention skipped this time: %s", exc)
            return 0

    def health(self) -> Dict[str, Any]:
        """For /health: {"ok", "error", ...}; a fault degrades the daemon, never stops ingest."""
        return self.backend.health()

    def problem(self) -> Optional[str]:
        """What systemd's STATUS= line should say about the history, or None when all is well."""
        report = self.health()
        return None if report["ok"] else f"history: {report['error']}"

    async def close(self) -> bool:
        """Write what waits and let go of the backend; True when nothing was lost."""
        if self._loading is not None:
            self._loading.cancel()
        return await self.backend.close()


def history_path(history_path: Optional[str], storage_path: Optional[str]) -> Optional[str]:
    """`--history-path`, else `history.sqlite3` beside `--storage-path`, else None (in memory)."""
    if history_path:
        return history_path
    if storage_path:
        return os.path.join(os.path.dirname(os.path.abspath(storage_path)), DEFAULT_FILE_NAME)
    return None


def open_history(*, clock: Callable[[], float], path: Optional[str] = None,
                 redis_client: Any = None, redis_prefix: str = "progressista:",
                 retention_days: float = 90.0, max_runs: int = 100000,
                 overdue_factor: float = expectations.DEFAULT_OVERDUE_FACTOR,
                 children: bool = False,
                 note: Callable[[str], None] = log.info) -> Optional[History]:
    """The history the options ask for: None when `max_runs` is 0 (history off); in Redis
    with a client (`path` unused), else SQLite at `path`, else SQLite in memory. Where it
    is, or that it is off, is told to `note` (a line for the start-up log)."""
    if max_runs == 0:
        note("run history is off (--history-max-runs 0)")
        return None
    backend: Backend
    if redis_client is not None:
        from progressistad.history.redis import RedisHistory

        backend = RedisHistory(redis_client, redis_prefix, retention_days=retention_days,
                               max_runs=max_runs, clock=clock)
        note(f"run history in Redis under {redis_prefix}history:, shared by the group")
    else:
        from progressistad.history.sqlite import SQLiteHistory

        note(f"run history in {os.path.abspath(path)}" if path is not None else
             "run history is kept in memory (no --history-path or --storage-path): it does "
             "not survive a restart")
        backend = SQLiteHistory(path, retention_days=retention_days, max_runs=max_runs,
                                clock=clock)
    return History(backend, clock, overdue_factor=overdue_factor, children=children)
