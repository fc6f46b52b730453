"""The transitions observer on the real in-memory store and on a mirror: which announced changes
make transitions, the run starts it keeps, and the task before a change."""

from __future__ import annotations

from typing import Any, Dict

import pytest

from progressistad.cluster.mirror import TaskMirror
from progressistad.core.store import SweepPolicy, TaskStore
from progressistad.history.records import ABANDONED
from progressistad.transitions import TransitionObserver

T0 = 1_700_000_000.0


class Rig:
    """A store, the observer on it, and every transition it made."""

    def __init__(self) -> None:
        self.store = TaskStore()
        self.observer = TransitionObserver(self.store)
        self.seen = []
        self.observer.subscribe(self.seen.extend)

    def event(self, now: float, local: bool = True, **event: Any):
        event.setdefault("task_id", "t")
        return self.announce(self.store.apply([event], now), local)

    def announce(self, changes, local: bool = True):
        before = len(self.seen)
        self.observer.on_changes(changes, local)
        return self.seen[before:]


def test_a_task_s_first_event_begins_a_run_at_its_creation():
    rig = Rig()
    (first,) = rig.event(T0, status="start", total=10)
    assert (first.before, first.after, first.run_started_at) == (None, "start", T0)
    assert first.previous() is None and first.previous_run_started_at is None
    assert first.step.begins and first.task["total"] == 10 and first.local


def test_updates_of_a_running_task_make_none_and_its_end_makes_one():
    rig = Rig()
    rig.event(T0, status="start")
    assert rig.event(T0 + 1, n=1) == [], "from one active status to another: nothing to tell"
    assert rig.event(T0 + 2, n=2) == [] and rig.event(T0 + 3, n=3) == []
    (end,) = rig.event(T0 + 4, status="close", n=4)
    assert (end.before, end.after, end.step.ends) == ("update", "close", "close")
    assert end.previous_run_started_at == T0 and end.task["n"] == 4
    assert rig.observer.run_started_at("t") == T0


def test_a_start_on_a_running_task_keeps_what_it_had_for_the_abandoned_run():
    rig = Rig()
    rig.event(T0, status="start", total=10, desc="first")
    rig.event(T0 + 5, n=7)
    (again,) = rig.event(T0 + 9, status="start", n=0, desc="second")
    assert again.step.ends == ABANDONED and again.step.begins
    before = again.previous()
    assert (before["status"], before["n"], before["desc"], before["updated_at"]) == (
        "update", 7, "first", T0 + 5)
    assert (again.previous_run_started_at, again.run_started_at) == (T0, T0 + 9)
    assert again.task["n"] == 0


def test_a_change_announced_again_without_an_event_makes_none():
    rig = Rig()
    rig.event(T0, status="start")
    assert rig.announce(rig.store.annotate("t", expected_duration=5.0, overdue=False)) == []


def test_overdue_turning_on_is_a_transition_and_turning_off_is_not():
    rig = Rig()
    rig.event(T0, status="start")
    rig.event(T0 + 1, n=1)
    rig.announce(rig.store.annotate("t", expected_duration=5.0, overdue=False))
    (late,) = rig.announce(rig.store.annotate("t", expected_duration=5.0, overdue=True))
    assert late.turned_overdue and late.before == late.after == "update"
    assert not late.step.ends and not late.step.begins
    assert rig.announce(rig.store.annotate("t", expected_duration=5.0, overdue=True)) == []
    assert rig.announce(rig.store.annotate("t")) == []


def test_a_removal_ends_with_the_task_as_last_seen_and_a_sweep_stalls_it():
    rig = Rig()
    rig.event(T0, status="start")
    rig.event(T0 + 2, n=3)
    (stalled,) = rig.announce(rig.store.sweep(T0 + 100, SweepPolicy(stale_seconds=10)))
    assert (stalled.before, stalled.after) == ("update", "stale") and not stalled.step.ends
    (gone,) = rig.announce(rig.store.remove("t"), local=False)
    assert (gone.before, gone.after, gone.step.ends, gone.local) == ("stale", None, ABANDONED,
                                                                      False)
    assert gone.task["n"] == 3 and gone.previous() is gone.task
    assert gone.previous_run_started_at == T0 and gone.run_started_at is None
    assert rig.observer.run_started_at("t") is None


def test_a_reactivated_task_begins_a_run_at_the_event_that_reactivated_it():
    rig = Rig()
    rig.event(T0, status="close")
    (again,) = rig.event(T0 + 50, n=1)
    assert again.step.begins and again.run_started_at == T0 + 50
    assert again.previous_run_started_at == T0


def test_tasks_present_at_start_are_primed_without_transitions():
    rig = Rig()
    rig.store.apply([{"task_id": "loaded", "status": "update"}], T0)
    rig.observer.prime()
    assert rig.seen == [] and rig.observer.run_started_at("loaded") == T0
    assert rig.event(T0 + 1, task_id="loaded", n=1) == []


class Copy:
    """A task as a shared store publishes it: a new object for each write."""

    def __init__(self, task_id: str, version: int, **fields: Any) -> None:
        self.task_id = task_id
        self.version = version
        self.wire: Dict[str, Any] = {"task_id": task_id, "status": "update", "n": 0,
                                     "created_at": T0, "updated_at": T0 + version, **fields}

    @property
    def status(self) -> str:
        return self.wire["status"]

    def to_wire(self) -> Dict[str, Any]:
        return dict(self.wire)

    def keep_telemetry(self, held: Any) -> None:
        """Each copy carries its whole wire form: nothing to take from `held`."""

    def entry(self) -> str:
        raise NotImplementedError


def test_on_a_mirror_the_task_before_a_change_is_the_copy_held_before():
    mirror = TaskMirror()
    observer = TransitionObserver(mirror)
    seen = []
    observer.subscribe(seen.extend)
    observer.on_changes(mirror.apply([Copy("t", 1, status="start")], []), False)
    observer.on_changes(mirror.apply([Copy("t", 2, n=4)], []), False)
    observer.on_changes(mirror.apply([Copy("t", 3, n=5)], []), False)
    assert len(seen) == 1
    observer.on_changes(mirror.annotate("t", expected_duration=1.0, overdue=True), True)
    assert seen[-1].turned_overdue and seen[-1].task["overdue"] is True
    observer.on_changes(mirror.apply([Copy("t", 4, status="start", n=0)], []), False)
    again = seen[-1]
    assert again.step.ends == ABANDONED and again.previous()["n"] == 5
    assert again.run_started_at == T0 + 4 and again.task["expected_duration"] == 1.0


@pytest.mark.parametrize("status", ["close", "error"])
def test_a_task_created_finished_is_a_run_from_its_creation(status):
    rig = Rig()
    (made,) = rig.event(T0, status=status)
    assert made.step.ends == status and made.run_started_at == T0


def test_overdue_on_a_task_still_in_its_start_ends_no_run():
    rig = Rig()
    rig.event(T0, status="start")
    (late,) = rig.announce(rig.store.annotate("t", expected_duration=5.0, overdue=True))
    assert late.turned_overdue and not late.step.ends and not late.step.begins
    (again,) = rig.event(T0 + 9, status="start")
    assert again.step.ends == ABANDONED and again.previous_run_started_at == T0
