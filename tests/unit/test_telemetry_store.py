"""Telemetry rules of the pure store, with an explicit `now`: metrics merge and cap, postfix,
the log tail, the series and their thinning, the budget and the order it trims in."""

from __future__ import annotations

import asyncio
import json

import pytest

from progressistad import contract
from progressistad.core.schemas import InvalidInput
from progressistad.core.store import EventRefused, SweepPolicy, Task, TaskStore
from progressistad.core.wirejson import entry
from progressistad.service import TaskService

T0 = 1_700_000_000.0
MAX_KEYS = contract.METRICS_MAX_KEYS
POINTS = contract.SERIES_MAX_POINTS


def apply(store, now=T0, **event):
    event.setdefault("task_id", "a")
    return store.apply([event], now)


def keys(count, start=0):
    return {f"m{i}": float(i) for i in range(start, start + count)}


# ---- metrics and postfix

def test_metrics_keep_the_latest_value_per_key_and_null_removes_one():
    store = TaskStore()
    apply(store, metrics={"loss": 1.0, "acc": 0.5})
    apply(store, T0 + 1, metrics={"loss": 0.5, "lr": 0.1})
    assert store.get("a").to_wire()["metrics"] == {"loss": 0.5, "acc": 0.5, "lr": 0.1}
    apply(store, T0 + 2, metrics={"acc": None, "absent": None})
    assert store.get("a").to_wire()["metrics"] == {"loss": 0.5, "lr": 0.1}
    apply(store, T0 + 3, n=5)
    assert store.get("a").metrics == {"loss": 0.5, "lr": 0.1}
    apply(store, T0 + 4, metrics={})
    assert store.get("a").metrics == {"loss": 0.5, "lr": 0.1}


def test_removing_every_metric_serves_null():
    store = TaskStore()
    apply(store, metrics={"loss": 1.0})
    apply(store, T0 + 1, metrics={"loss": None})
    assert store.get("a").to_wire()["metrics"] is None
    apply(store, T0 + 2, task_id="b", metrics={"x": None})
    assert store.get("b").to_wire()["metrics"] is None


def test_a_served_form_keeps_its_metrics_when_the_task_changes():
    store = TaskStore()
    apply(store, metrics={"loss": 1.0})
    served = store.get("a").to_wire()
    text = store.get("a").entry()
    apply(store, T0 + 1, metrics={"loss": 0.5, "acc": 1.0})
    assert served["metrics"] == {"loss": 1.0}
    assert json.loads("{" + text + "}")["a"]["metrics"] == {"loss": 1.0}
    assert '"acc":1.0' in store.get("a").entry()


def test_postfix_is_kept_until_an_event_changes_it():
    store = TaskStore()
    apply(store, postfix="loss=1.0")
    apply(store, T0 + 1, n=3)
    assert store.get("a").to_wire()["postfix"] == "loss=1.0"
    apply(store, T0 + 2, postfix="")
    assert store.get("a").postfix == ""


def test_a_new_task_serves_the_telemetry_fields_empty():
    store = TaskStore()
    apply(store)
    wire = store.get("a").to_wire()
    assert set(wire) == set(contract.TASK_FIELDS)
    assert (wire["metrics"], wire["postfix"], wire["last_log"], wire["log_lines"]) == (None, None, None, 0)
    assert "log" not in wire


def test_sixteen_metrics_fit_and_a_seventeenth_is_refused_naming_field_and_index():
    store = TaskStore()
    apply(store, metrics=keys(MAX_KEYS))
    apply(store, T0 + 1, metrics=keys(MAX_KEYS))
    with pytest.raises(EventRefused) as caught:
        apply(store, T0 + 2, metrics={"one_more": 1.0})
    assert (caught.value.field, caught.value.index) == ("metrics", 0)
    assert f"{MAX_KEYS + 1} metrics" in caught.value.problem
    assert store.get("a").metrics == keys(MAX_KEYS)
    assert store.get("a").updated_at == T0 + 1


def test_an_event_may_remove_and_add_at_the_cap():
    store = TaskStore()
    apply(store, metrics=keys(MAX_KEYS))
    apply(store, T0 + 1, metrics={"m0": None, "new": 1.0})
    assert len(store.get("a").metrics) == MAX_KEYS and "new" in store.get("a").metrics


def test_one_event_with_seventeen_metrics_is_refused():
    with pytest.raises(EventRefused):
        apply(TaskStore(), metrics=keys(MAX_KEYS + 1))
    apply(TaskStore(), metrics={**keys(MAX_KEYS), "gone": None})


def test_the_cap_counts_across_the_events_of_a_batch_in_order():
    store = TaskStore()
    apply(store, metrics=keys(MAX_KEYS - 2))
    store.apply([{"task_id": "a", "metrics": {"m0": None, "m1": None}},
                 {"task_id": "a", "metrics": keys(4, start=100)}], T0 + 1)
    assert len(store.get("a").metrics) == MAX_KEYS
    with pytest.raises(EventRefused) as caught:
        store.apply([{"task_id": "b", "metrics": keys(10)}, {"task_id": "a", "n": 1},
                     {"task_id": "b", "metrics": keys(7, start=10)}], T0 + 2)
    assert caught.value.index == 2


def test_a_refused_batch_applies_none_of_its_events_and_evicts_nothing():
    store = TaskStore(max_tasks=2)
    apply(store, task_id="done", status="close")
    apply(store, T0 + 1, metrics=keys(MAX_KEYS))
    before = {task.task_id: task.entry() for task in store}
    with pytest.raises(EventRefused):
        store.apply([{"task_id": "new", "n": 1}, {"task_id": "a", "n": 2, "log": ["x"]},
                     {"task_id": "a", "metrics": {"extra": 1}}], T0 + 2)
    assert {task.task_id: task.entry() for task in store} == before
    assert store.get("a").log_lines == 0


def test_the_service_answers_a_refused_event_as_invalid_input_naming_field_and_index():
    store = TaskStore()
    service = TaskService(store, clock=lambda: T0, policy=SweepPolicy())
    heard = []
    service.add_listener(heard.append)
    asyncio.run(service.ingest([{"task_id": "a", "metrics": keys(MAX_KEYS)}]))
    with pytest.raises(InvalidInput) as caught:
        asyncio.run(service.ingest([{"task_id": "b"}, {"task_id": "a", "metrics": {"x": 1}}]))
    assert caught.value.details == {"field": "metrics", "index": 1}
    assert caught.value.message.startswith("event 1: field 'metrics': ")
    assert len(heard) == 1 and "b" not in store


# ---- the log tail

def test_log_lines_are_appended_to_a_tail_of_the_last_hundred():
    store = TaskStore()
    apply(store, log=["first"])
    task = store.get("a")
    assert (task.last_log, task.log_lines, task.log_tail()) == ("first", 1, ["first"])
    for start in range(0, 150, 30):
        apply(store, T0 + start, log=[f"line {i}" for i in range(start, start + 30)])
    assert task.log_lines == contract.LOG_TAIL_LINES
    assert task.log_tail() == [f"line {i}" for i in range(150 - contract.LOG_TAIL_LINES, 150)]
    wire = task.to_wire()
    assert (wire["last_log"], wire["log_lines"]) == ("line 149", contract.LOG_TAIL_LINES)
    assert entry("a", wire) == task.entry()


def test_an_event_without_log_keeps_the_tail_and_log_tail_is_a_copy():
    store = TaskStore()
    apply(store, log=["one"])
    apply(store, T0 + 1, n=2, log=[])
    tail = store.get("a").log_tail()
    tail.append("mine")
    assert store.get("a").log_tail() == ["one"]


def test_a_restart_keeps_metrics_postfix_and_tail_but_begins_a_new_series():
    store = TaskStore()
    apply(store, status="start", metrics={"loss": 1.0}, postfix="p", log=["run 1"])
    store.sample(T0, ["a"])
    apply(store, T0 + 1, status="close")
    store.sample(T0 + 1, ["a"])
    apply(store, T0 + 2, status="start", n=0)
    task = store.get("a")
    assert (task.metrics, task.postfix, task.log_tail()) == ({"loss": 1.0}, "p", ["run 1"])
    assert task.series_wire()["t"] == []
    store.sample(T0 + 3, ["a"])
    assert task.series_wire()["t"] == [T0 + 3]


# ---- series

def test_a_sample_records_time_n_rate_and_each_metric():
    store = TaskStore()
    apply(store, n=0, metrics={"loss": 1.0})
    store.sample(T0, ["a", "unknown"])
    apply(store, T0 + 1, n=10, metrics={"loss": 0.5, "acc": 0.25})
    store.sample(T0 + 1, ["a"])
    apply(store, T0 + 2, n=30, metrics={"loss": None, "acc": 0.5})
    store.sample(T0 + 2, ["a"])
    assert store.get("a").series_wire() == {
        "task_id": "a", "t": [T0, T0 + 1, T0 + 2], "n": [0, 10, 30], "rate": [None, 10.0, 13.0],
        "metrics": {"acc": [None, 0.25, 0.5]},
    }
    assert json.dumps(store.get("a").series_wire(), allow_nan=False)


def test_a_task_never_sampled_serves_an_empty_series():
    store = TaskStore()
    apply(store)
    assert store.get("a").series_wire() == {"task_id": "a", "t": [], "n": [], "rate": [], "metrics": {}}


def sampled(samples):
    """The series of a task sampled `samples` times, at t = 0, 1, 2, ..."""
    task = Task("a", 0.0)
    task.metrics = {"m": 0.0}
    for i in range(samples):
        task.n = i
        task.metrics = {"m": float(i)}
        task.sample(float(i))
    return task.series_wire()


def test_a_series_holds_every_sample_up_to_the_cap():
    series = sampled(POINTS)
    assert series["t"] == [float(i) for i in range(POINTS)]


def test_a_full_series_drops_every_other_point_and_doubles_its_stride():
    series = sampled(POINTS + 1)
    assert series["t"] == [float(i) for i in range(0, POINTS + 1, 2)]
    assert len(series["t"]) == POINTS // 2 + 1
    assert series["n"] == series["t"] == series["metrics"]["m"]
    # Stride 2 now: the next sample is skipped, the one after is kept.
    assert sampled(POINTS + 2)["t"] == series["t"]
    assert sampled(POINTS + 3)["t"][-1] == float(POINTS + 2)


@pytest.mark.parametrize("samples", [POINTS * 2, POINTS * 4 + 3, 10_000])
def test_a_series_stays_within_the_cap_and_spans_the_whole_life(samples):
    series = sampled(samples)
    t = series["t"]
    assert POINTS // 2 <= len(t) <= POINTS
    assert t[0] == 0.0
    stride = t[1] - t[0]
    assert t == [i * stride for i in range(len(t))]
    assert samples - 1 - t[-1] < stride
    assert len(series["n"]) == len(series["rate"]) == len(series["metrics"]["m"]) == len(t)


def test_a_metric_that_appears_later_is_null_before_and_a_removed_one_loses_its_series():
    task = Task("a", 0.0)
    task.sample(0.0)
    task.metrics = {"late": 2.0}
    task.sample(1.0)
    assert task.series_wire()["metrics"] == {"late": [None, 2.0]}
    task.metrics = {"other": 3.0}
    task.sample(2.0)
    assert task.series_wire()["metrics"] == {"other": [None, None, 3.0]}


# ---- the budget

def full_task(store, task_id, now, lines=contract.LOG_TAIL_LINES, samples=20):
    store.apply([{"task_id": task_id, "metrics": keys(4),
                  "log": [f"{task_id} {i:03d} " + "x" * 70 for i in range(lines)]}], now)
    for i in range(samples):
        store.sample(now, [task_id])


def test_held_bytes_are_counted_and_freed_with_their_task():
    store = TaskStore()
    full_task(store, "a", T0)
    full_task(store, "b", T0 + 1)
    both = store.telemetry_bytes
    assert both > 2 * contract.LOG_TAIL_LINES * 80
    store.remove("a")
    assert 0 < store.telemetry_bytes < both
    store.remove_where(T0 + 10)
    assert store.telemetry_bytes == 0


def test_a_sweep_that_removes_a_task_frees_its_bytes():
    store = TaskStore()
    full_task(store, "a", T0)
    apply(store, T0, task_id="a", status="close")
    store.sweep(T0 + 100, SweepPolicy(retention_seconds=10))
    assert store.telemetry_bytes == 0 and "a" not in store


def budget_store(tasks, room, **shape):
    """A store whose budget holds the telemetry of `room` of `tasks` tasks like `full_task`'s."""
    probe = TaskStore()
    full_task(probe, "probe", T0, **shape)
    store = TaskStore(telemetry_budget_bytes=int(probe.telemetry_bytes * (room + 0.5)))
    for i in range(tasks):
        full_task(store, f"t{i}", T0 + i, **shape)
    return store


def test_beyond_the_budget_series_go_first_least_recently_updated_first():
    store = budget_store(6, room=4, lines=5, samples=POINTS)
    assert store.telemetry_bytes <= store.telemetry_budget_bytes
    with_series = [task.task_id for task in store if task.series_wire()["t"]]
    with_tail = [task.task_id for task in store if task.log_lines]
    assert with_tail == [f"t{i}" for i in range(6)]
    assert with_series == [f"t{i}" for i in range(6 - len(with_series), 6)]
    assert len(with_series) < 6


def test_tails_go_only_when_tails_alone_pass_the_budget_least_recent_first():
    store = budget_store(10, room=3)
    assert store.telemetry_bytes <= store.telemetry_budget_bytes
    kept = [task.task_id for task in store if task.log_lines]
    assert kept and kept == [f"t{i}" for i in range(10 - len(kept), 10)]
    assert all(not task.series_wire()["t"] for task in store if not task.log_lines)
    trimmed = store.get("t0").to_wire()
    assert (trimmed["last_log"], trimmed["log_lines"]) == (None, 0)


def test_a_trimmed_tail_is_reported_as_a_change_and_its_entry_made_again():
    probe = TaskStore()
    apply(probe, log=["x" * 100] * contract.LOG_TAIL_LINES)
    store = TaskStore(telemetry_budget_bytes=int(probe.telemetry_bytes * 1.5))
    apply(store, task_id="old", log=["x" * 100] * contract.LOG_TAIL_LINES)
    old_entry = store.get("old").entry()
    changes = apply(store, T0 + 1, task_id="new", log=["y" * 100] * contract.LOG_TAIL_LINES)
    assert changes.upserted == {"old", "new"}
    assert store.get("old").entry() != old_entry and '"log_lines":0' in store.get("old").entry()


def test_an_update_makes_a_task_the_most_recent_for_its_tail():
    probe = TaskStore()
    apply(probe, log=["x" * 100] * contract.LOG_TAIL_LINES)
    store = TaskStore(telemetry_budget_bytes=int(probe.telemetry_bytes * 2.5))
    for name in ("a", "b"):
        apply(store, T0, task_id=name, log=["x" * 100] * contract.LOG_TAIL_LINES)
    apply(store, T0 + 1, task_id="a", log=["again"])
    apply(store, T0 + 2, task_id="c", log=["x" * 100] * contract.LOG_TAIL_LINES)
    assert [t.task_id for t in store if t.log_lines] == ["a", "c"]


def test_events_are_never_refused_for_the_budget_and_the_newest_fits_alone():
    store = TaskStore(telemetry_budget_bytes=0)
    changes = apply(store, metrics={"a": 1.0}, log=["line"])
    store.sample(T0, ["a"])
    assert "a" in changes.upserted
    assert store.telemetry_bytes == 0
    assert store.get("a").metrics == {"a": 1.0} and store.get("a").log_lines == 0


def test_a_flood_of_telemetry_to_many_tasks_stays_within_the_budget():
    budget = 2 * 1024 * 1024
    store = TaskStore(max_tasks=2000, telemetry_budget_bytes=budget)
    line = "z" * 200
    for step in range(30):
        now = T0 + step
        events = [{"task_id": f"t{i}", "n": step, "metrics": keys(4), "log": [line] * 5}
                  for i in range(step % 3, 2000, 3)]
        store.apply(events, now)
        store.sample(now, [event["task_id"] for event in events])
        assert store.telemetry_bytes <= budget
    assert sum(task.log_lines for task in store) > 0
