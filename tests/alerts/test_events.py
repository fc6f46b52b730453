"""Which events a change makes and which routes want them: tables, no I/O, no clock."""

from __future__ import annotations

import pytest

from progressistad.alerts import events
from progressistad.alerts.events import Seen
from progressistad.alerts.routes import Route

T0 = 1_700_000_000.0


def task(status="update", task_id="train:0", created=T0, updated=T0 + 5, **fields):
    served = {"task_id": task_id, "status": status, "created_at": created, "updated_at": updated,
              "done_at": None, "stale_at": None, "meta": None, "n": 3, "total": 10}
    if status in ("close", "error"):
        served["done_at"] = updated
    served.update(fields)
    return served


def route(**fields):
    fields.setdefault("events", frozenset(events.KINDS))
    return Route(name="r", sink="webhook", safe_url="https://h/", url="https://h/", **fields)


@pytest.mark.parametrize("before, after, found", [
    ("update", "close", ("close",)),
    ("start", "error", ("error",)),
    ("stale", "close", ("close",)),
    ("error", "close", ("close",)),
    ("close", "close", ()),
    ("error", "error", ()),
    ("update", "stale", ("stalled",)),
    ("start", "stale", ("stalled",)),
    ("recovered", "stale", ()),
    ("stale", "update", ("resumed",)),
    ("stale", "start", ("resumed",)),
    ("recovered", "update", ()),
    ("update", "update", ()),
    ("close", "start", ()),
])
def test_transitions(before, after, found):
    assert events.kinds(Seen(before), task(after)) == found


def test_a_task_loaded_after_a_restart_stalls_only_after_its_first_new_event():
    loaded = Seen("recovered")
    assert events.kinds(loaded, task("stale")) == ()
    updated = events.seen(task("update"))
    assert events.kinds(updated, task("stale")) == ("stalled",)


def test_a_task_loaded_after_a_restart_that_goes_stale_and_back_is_not_announced():
    loaded = Seen("recovered")
    remembered = events.remember(loaded, task("stale"))
    assert remembered == loaded
    assert events.kinds(remembered, task("update")) == ()
    assert events.remember(remembered, task("update")) == Seen("update")
    assert events.remember(Seen("update"), task("stale")) == Seen("stale")
    assert events.remember(None, task("stale")) == Seen("stale")


def test_a_task_not_seen_before_counts_only_on_its_first_event():
    assert events.kinds(None, task("close", created=T0, updated=T0)) == ("close",)
    assert events.kinds(None, task("error", created=T0, updated=T0)) == ("error",)
    assert events.kinds(None, task("start", created=T0, updated=T0)) == ()
    # Ended before this daemon listened (a snapshot, a restart): not announced.
    assert events.kinds(None, task("close", created=T0, updated=T0 + 9)) == ()
    assert events.kinds(None, task("stale", created=T0, updated=T0 + 9)) == ()


def test_overdue_when_the_served_flag_turns_true():
    assert events.kinds(Seen("update"), task(overdue=True)) == ("overdue",)
    assert events.kinds(Seen("update", overdue=True), task(overdue=True)) == ()
    assert events.kinds(Seen("update"), task(overdue=False)) == ()
    assert events.kinds(Seen("stale"), task(overdue=True)) == ("resumed", "overdue")
    assert events.kinds(Seen("update"), task("close", overdue=True)) == ("close",)
    assert events.seen(task(overdue=True)) == Seen("update", True)


@pytest.mark.parametrize("task_id, meta, group", [
    ("train:rank0", None, "train"),
    ("train:a:b", None, "train"),
    ("backup", None, None),
    (":odd", None, None),
    ("train:0", {"group": "nightly"}, "nightly"),
    ("train:0", {"group": "  "}, "train"),
    ("x", {"group": 7}, "7"),
    ("x", {"group": 2.5}, "2.5"),
    ("x", {"group": True}, None),
    ("x", {"group": ["a"]}, None),
])
def test_groups_as_the_dashboard_groups(task_id, meta, group):
    assert events.group_of({"task_id": task_id, "meta": meta}) == group


def test_a_route_wants_only_its_events():
    assert events.wants(route(events=frozenset({"error"})), "error", task("error"))
    assert not events.wants(route(events=frozenset({"error"})), "close", task("close"))


def test_children_are_skipped_unless_the_route_wants_them():
    child = task("error", meta={"parent_id": "run:1"})
    assert not events.wants(route(), "error", child)
    assert events.wants(route(children=True), "error", child)


def test_min_duration_applies_to_close_only():
    short = task("close", created=T0, updated=T0 + 30)
    assert not events.wants(route(min_duration=60), "close", short)
    assert events.wants(route(min_duration=30), "close", short)
    assert events.wants(route(min_duration=60), "error", task("error", created=T0, updated=T0 + 3))


@pytest.mark.parametrize("globs, served, wanted", [
    (("train:*",), task(task_id="train:0"), True),
    (("train",), task(task_id="train:0"), True),
    (("backup",), task(task_id="train:0"), False),
    (("nightly-*",), task(task_id="x:1", meta={"job": "nightly-db"}), True),
    (("nightly",), task(task_id="x:1", meta={"group": "nightly"}), True),
    (("Train*",), task(task_id="train:0"), False),
    (("a", "b*"), task(task_id="b2"), True),
])
def test_globs_match_task_id_group_or_job(globs, served, wanted):
    assert events.wants(route(match=globs), "error", dict(served, status="error")) is wanted


def test_duration_of_a_run():
    assert events.duration(task("close", created=T0, updated=T0 + 90)) == 90
    assert events.duration(task("update", created=T0, updated=T0 + 12)) == 12
