"""The annotator against a real store and history: which tasks a job's new figures reach, and
which it stops following (most tasks are their own job, and are not indexed by job)."""

from __future__ import annotations

from progressistad.core.store import SweepPolicy, TaskStore
from progressistad.history.annotator import Annotator
from progressistad.history.service import History
from progressistad.history.sqlite import SQLiteHistory
from progressistad.service import TaskService
from progressistad.transitions import TransitionObserver

from tests.history.conftest import Clock, run
from tests.history.helpers import T0, run as make_run, until


def close_runs(job, count=3, duration=100.0):
    return [make_run(job, "close", ended_at=T0 + 1000 * i, duration=duration)
            for i in range(count)]


class Annotated:
    """A task service with its observer, a history and an annotator, wired as the daemon does;
    callbacks the annotator schedules run when `settle` is called."""

    def __init__(self) -> None:
        self.clock = Clock(T0 + 100000)
        self.history = History(SQLiteHistory(None), self.clock)
        self.service = TaskService(TaskStore(), self.clock, SweepPolicy())
        observer = TransitionObserver(self.service.store)
        self.service.add_origin_listener(observer.on_changes)
        self._scheduled = []
        self.annotator = Annotator(self.history, self.service, observer, self.clock,
                                   self._scheduled.append)
        observer.subscribe(self.annotator.on_transitions)
        self.history.on_expectations = self.annotator.expectations_changed

    async def post(self, *events):
        self.clock.now += 1
        await self.service.ingest(list(events))

    async def recorded(self, runs, checked=True, **expected):
        """Record `runs`, then wait until the tasks have the `expected_duration`s given: from
        the cleanup pass's `check` or, with `checked` False, only from a job's figures read
        from the history (which reach the tasks of that job alone)."""
        self.history.record(runs)

        def arrived():
            while self._scheduled:
                self._scheduled.pop(0)()
            if checked:
                self.annotator.check()
            return all(self.expected(task_id) == value for task_id, value in expected.items())
        await until(arrived, what=f"expected durations {expected}")

    def expected(self, task_id):
        return self.service.store.get(task_id).to_wire().get("expected_duration")


def test_new_figures_reach_the_task_that_is_its_own_job_and_the_tasks_that_name_it():
    async def body():
        annotated = Annotated()
        await annotated.post({"task_id": "etl", "status": "start"},
                             {"task_id": "etl-2", "status": "start", "meta": {"job": "etl"}},
                             {"task_id": "other", "status": "start"},
                             {"task_id": "elsewhere", "status": "start", "meta": {"job": "x"}})
        await annotated.recorded(close_runs("etl"), checked=False, etl=100.0, **{"etl-2": 100.0})
        assert annotated.expected("other") is None and annotated.expected("elsewhere") is None
        await annotated.recorded(close_runs("other", duration=50.0), other=50.0)
        assert len(annotated.annotator) == 4
        await annotated.post({"task_id": "etl", "status": "close"},
                             {"task_id": "etl-2", "status": "error"})
        assert len(annotated.annotator) == 2
        assert "expected_duration" not in annotated.service.store.get("etl").to_wire()
        await annotated.recorded(close_runs("x", duration=10.0), elsewhere=10.0)
        assert annotated.expected("other") == 50.0
        assert await annotated.history.close()
    run(body())


def test_a_task_that_changes_job_is_followed_under_the_new_one_only():
    async def body():
        annotated = Annotated()
        await annotated.post({"task_id": "t", "status": "start", "meta": {"job": "a"}})
        await annotated.post({"task_id": "t", "status": "start", "meta": {}})
        assert annotated.annotator._by_job == {}
        await annotated.recorded(close_runs("a"), t=None)
        await annotated.recorded(close_runs("t", duration=30.0), t=30.0)
        await annotated.post({"task_id": "t", "status": "start", "meta": {"job": "a"}})
        await annotated.recorded([], t=100.0)
        assert annotated.annotator._by_job == {"a": {"t"}}
        await annotated.post({"task_id": "t", "status": "close"})
        assert annotated.annotator._by_job == {} and len(annotated.annotator) == 0
        assert await annotated.history.close()
    run(body())
