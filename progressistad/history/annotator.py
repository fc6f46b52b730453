"""Expectations on tasks: `expected_duration` and `overdue` served on the active tasks of jobs
with enough close runs (SPEC section 14).

A subscriber of the `TransitionObserver`. It annotates a task (the store's
`annotate`) when it becomes active or begins a run, clears the annotation when it
stops being active, annotates again the tasks of a job whose close runs were just
read from the history, and in each cleanup pass (`check`) brings every figure up to
date (a run recorded since changes its job's) and turns `overdue` on for the runs
that have taken longer than `--overdue-factor` times their job's 90th percentile.
What it changes of its own accord is announced like any other change, so that
dashboards and, through the observer, notifications see it; what it changes in
answer to an announcement goes out with that announcement. With a shared store
every daemon annotates its own mirror from the shared history, so all serve the
same figures (a job's close runs are read again at most
`expectations.REFRESH_SECONDS` after another daemon added one).

For a task without a total, `expected_duration` is the time-based estimate: what
is left is `expected_duration` less the time its run has taken so far.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Optional, Set, Tuple

from progressistad import contract
from progressistad.core.store import Changes
from progressistad.history import records
from progressistad.history.service import History
from progressistad.transitions import Transition, TransitionObserver


class Annotator:
    """Keeps the expectation of every active task it hears of served on it."""

    def __init__(self, history: History, service: Any, observer: TransitionObserver,
                 clock: Callable[[], float], schedule: Callable[[Callable[[], None]], Any]) -> None:
        self._history = history
        self._service = service
        self._observer = observer
        self._clock = clock
        self._schedule = schedule
        """Runs a callback soon, outside the announcement at hand (the loop's add_callback)."""
        self._running: Dict[str, Tuple[str, float]] = {}
        """Active tasks: their job and when their run began."""
        self._by_job: Dict[str, Set[str]] = {}
        """Active tasks by job, but for a task that is its own job (most are: a job is the
        task's id unless `meta.job` says otherwise), found in `_running` by the job's name."""
        self._pending: Optional[Set[str]] = set()
        """Jobs whose figures changed since the last flush; None: every job's."""
        self._flush_scheduled = False

    def __len__(self) -> int:
        return len(self._running)

    def prime(self, forms: Optional[Mapping[str, Mapping[str, Any]]] = None) -> None:
        """Take the active tasks present at start; each is annotated once its job's close runs
        are read. `forms`: the tasks' served forms by id, when the caller has them already."""
        if forms is None:
            forms = self._service.store.snapshot(contract.ACTIVE_STATUSES)
        for task_id, task in forms.items():
            if self._history.expects(task):
                started = self._observer.run_started_at(task_id)
                self._track(task_id, records.job_of(task),
                            task["created_at"] if started is None else started)
        self._service.announce(self._annotate(self._running))

    def on_transitions(self, transitions: List[Transition]) -> None:
        """The observer's subscriber; the annotations go out with the announcement at hand."""
        now = self._clock()
        store = self._service.store
        for transition in transitions:
            task_id = transition.task_id
            if transition.after is not None and self._history.expects(transition.task):
                job = records.job_of(transition.task)
                assert transition.run_started_at is not None
                self._track(task_id, job, transition.run_started_at)
                store.annotate(task_id, **self._fields(task_id, now))
            elif self._untrack(task_id) and transition.after is not None:
                store.annotate(task_id)

    def expectations_changed(self, jobs: Optional[Set[str]]) -> None:
        """`History.on_expectations`: annotate the tasks of `jobs` (None: all) again, soon."""
        if self._pending is not None:
            if jobs is None:
                self._pending = None
            else:
                self._pending |= jobs
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._schedule(self._flush)

    def check(self) -> Changes:
        """Once per cleanup pass: `overdue` on the runs past their limit, and every figure
        brought up to date; announces what changed and returns it."""
        changes = self._annotate(self._running)
        self._service.announce(changes)
        return changes

    def _flush(self) -> None:
        self._flush_scheduled = False
        jobs, self._pending = self._pending, set()
        if jobs is None:
            task_ids: Any = self._running
        else:
            task_ids = [task_id for job in jobs for task_id in self._tasks_of(job)]
        self._service.announce(self._annotate(task_ids))

    def _annotate(self, task_ids: Any) -> Changes:
        now = self._clock()
        annotate = self._service.store.annotate
        changes = Changes()
        for task_id in list(task_ids):
            changes.merge(annotate(task_id, **self._fields(task_id, now)))
        return changes

    def _fields(self, task_id: str, now: float) -> Dict[str, Any]:
        """The annotation of a tracked task: its job's figures, or none while there are none."""
        job, started = self._running[task_id]
        fields = self._history.job_fields(job, started, now)
        return fields if fields["expected_duration"] is not None else {}

    def _track(self, task_id: str, job: str, run_started_at: float) -> None:
        held = self._running.get(task_id)
        if held is not None and held[0] != job:
            self._untrack(task_id)
        self._running[task_id] = (job, run_started_at)
        if job != task_id:
            self._by_job.setdefault(job, set()).add(task_id)

    def _untrack(self, task_id: str) -> bool:
        """Stop following a task; True when it was followed."""
        held = self._running.pop(task_id, None)
        if held is None:
            return False
        job = held[0]
        if job != task_id:
            tasks = self._by_job[job]
            tasks.discard(task_id)
            if not tasks:
                del self._by_job[job]
        return True

    def _tasks_of(self, job: str) -> List[str]:
        tasks = list(self._by_job.get(job, ()))
        held = self._running.get(job)
        if held is not None and held[0] == job:
            tasks.append(job)
        return tasks
