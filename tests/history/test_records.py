"""When a run ends and what its record holds: pure, against the real task store's served forms."""

from __future__ import annotations

import pytest

from progressistad import contract
from progressistad.core.store import TaskStore
from progressistad.history import records
from progressistad.history.records import ABANDONED, Step, ended_runs, run_for, step

from tests.history.helpers import T0, task

RUNNING = ("start", "update", "recovered", "stale")


@pytest.mark.parametrize("before, after, expected", [
    (None, "start", Step(begins=True)),
    (None, "update", Step(begins=True)),
    (None, "close", Step("close", begins=True)),
    (None, "error", Step("error", begins=True)),
    *[(b, "close", Step("close")) for b in RUNNING],
    *[(b, "error", Step("error")) for b in RUNNING],
    *[(b, "start", Step(ABANDONED, from_before=True, begins=True)) for b in RUNNING],
    *[(b, "update", Step()) for b in RUNNING],
    ("update", "stale", Step()),
    *[(b, None, Step(ABANDONED, from_before=True)) for b in RUNNING],
    *[(b, None, Step()) for b in ("close", "error")],
    *[(b, a, Step(begins=True)) for b in ("close", "error") for a in ("start", "update")],
    *[(b, a, Step()) for b in ("close", "error") for a in ("close", "error")],
])
def test_step_decides_from_the_statuses_before_and_after_one_change(before, after, expected):
    assert step(before, after) == expected


def test_run_for_holds_the_fields_spec_lists_and_never_the_token():
    served = task("train:h:1", status="error", created_at=T0, updated_at=T0 + 90, done_at=T0 + 90,
                  desc="epochs", unit="it", total=10, n=7, metrics={"loss": 0.5}, postfix="x=1",
                  meta={"job": "train", "_token": "secret", "rank": 0})
    run = run_for(served, "error", log_tail=[f"line {i}" for i in range(30)])
    assert list(run) == list(records.RUN_FIELDS)
    assert run["job"] == "train" and run["task_id"] == "train:h:1"
    assert (run["desc"], run["unit"], run["total"], run["n"]) == ("epochs", "it", 10, 7)
    assert (run["started_at"], run["ended_at"], run["duration"]) == (T0, T0 + 90, 90)
    assert run["metrics"] == {"loss": 0.5} and run["postfix"] == "x=1"
    assert run["meta"] == {"job": "train", "rank": 0}
    assert run["log"] == [f"line {i}" for i in range(10, 30)]


def test_close_runs_keep_no_log_and_abandoned_ones_end_at_the_last_update():
    served = task(status="update", created_at=T0, updated_at=T0 + 5, done_at=None)
    assert run_for(task(status="close", updated_at=T0 + 9, done_at=T0 + 8), "close",
                   log_tail=["x"])["log"] is None
    abandoned = run_for(served, ABANDONED, log_tail=["last"])
    assert (abandoned["ended_at"], abandoned["log"]) == (T0 + 5, ["last"])
    assert run_for(served, "close", ended_at=T0 + 7, started_at=T0 + 2)["duration"] == 5
    assert run_for(served, ABANDONED, started_at=T0 + 50)["duration"] == 0


@pytest.mark.parametrize("meta, job", [
    ({"job": "nightly"}, "nightly"), ({"job": ""}, "t"), ({"job": 3}, "t"), (None, "t"), ({}, "t"),
])
def test_the_job_is_meta_job_when_it_is_a_non_empty_text_else_the_task_id(meta, job):
    assert run_for(task(meta=meta), ABANDONED)["job"] == job


def test_a_run_has_the_same_id_whoever_records_it_and_runs_differ():
    one = run_for(task(updated_at=T0 + 1), ABANDONED)
    assert run_for(task(updated_at=T0 + 1), ABANDONED)["id"] == one["id"]
    assert run_for(task(updated_at=T0 + 2), ABANDONED)["id"] != one["id"]
    assert run_for(task(updated_at=T0 + 1), "error")["id"] != one["id"]
    assert run_for(task("u", updated_at=T0 + 1), ABANDONED)["id"] != one["id"]


class Lifetime:
    """One task driven event by event through the real store, its runs collected."""

    def __init__(self, children=False):
        self.store = TaskStore()
        self.run_started_at = None
        self.runs = []
        self.children = children

    def _observe(self, before, after):
        found = ended_runs(before, after, self.run_started_at, children=self.children)
        self.run_started_at = found.run_started_at
        self.runs += found.runs

    def event(self, now, **event):
        event.setdefault("task_id", "t")
        old = self.store.get(event["task_id"])
        before = None if old is None else old.to_wire()
        self.store.apply([event], now)
        self._observe(before, self.store.get(event["task_id"]).to_wire())

    def remove(self, task_id="t"):
        before = self.store.get(task_id).to_wire()
        self.store.remove(task_id)
        self._observe(before, None)

    def outcomes(self):
        return [(r["status"], r["started_at"] - T0, r["ended_at"] - T0) for r in self.runs]


def test_a_lifetime_of_closes_reactivations_restarts_and_a_removal():
    life = Lifetime()
    life.event(T0, status="start", n=0, total=10)
    life.event(T0 + 5, n=5)
    life.event(T0 + 10, status="close", n=10)
    life.event(T0 + 11, status="close")  # a client repeating itself ends nothing
    life.event(T0 + 20, n=11)  # reactivated: a new run
    life.event(T0 + 30, status="error")
    life.event(T0 + 40, status="start", n=0)  # after an end: begins a run
    life.event(T0 + 42, n=1)
    life.event(T0 + 45, status="start", n=0)  # before an end: abandons the unfinished one
    life.event(T0 + 47, n=3)
    life.remove()
    assert life.outcomes() == [("close", 0, 10), ("error", 20, 30), (ABANDONED, 40, 42),
                               (ABANDONED, 45, 47)]
    assert life.runs[2]["n"] == 1, "the abandoned run is the task before the start"


def test_stale_tasks_removed_by_a_sweep_are_abandoned_at_their_last_update():
    life = Lifetime()
    life.event(T0, status="start")
    life.event(T0 + 3, n=2)
    before = life.store.get("t").to_wire()
    from progressistad.core.store import SweepPolicy
    life.store.sweep(T0 + 100, SweepPolicy(stale_seconds=10))
    life._observe(before, life.store.get("t").to_wire())
    assert life.runs == []
    before = life.store.get("t").to_wire()
    life.store.sweep(T0 + 1000, SweepPolicy(max_task_age=500))
    life._observe(before, None)
    assert life.outcomes() == [(ABANDONED, 0, 3)]


def test_a_task_created_by_its_close_is_a_run_of_no_length():
    life = Lifetime()
    life.event(T0, status="close", n=1)
    assert life.outcomes() == [("close", 0, 0)]


@pytest.mark.parametrize("children, recorded", [(False, 0), (True, 2)])
def test_child_bars_are_recorded_only_when_asked(children, recorded):
    life = Lifetime(children=children)
    life.event(T0, status="start", meta={"parent_id": "wrapper"})
    life.event(T0 + 1, status="close")
    life.event(T0 + 2, status="start")
    life.remove()
    assert len(life.runs) == recorded


def test_every_status_pair_has_a_step():
    statuses = (None,) + contract.STATUSES
    assert all(isinstance(step(b, a), Step) for b in statuses for a in statuses)
