"""A task's JSON entry is kept until the task changes; it must never be stale."""

import json

from hypothesis import given, settings, strategies as st

from progressistad import contract
from progressistad.core import wirejson
from progressistad.core.store import SweepPolicy, Task, TaskStore

T0 = 1_700_000_000.0

events = st.fixed_dictionaries(
    {"task_id": st.sampled_from("abc"), "status": st.sampled_from(contract.EVENT_STATUSES)},
    optional={"n": st.integers(0, 100), "total": st.none() | st.integers(1, 100),
              "desc": st.text(max_size=5),
              "meta": st.none() | st.dictionaries(st.text(max_size=2), st.integers())},
)
steps = st.lists(st.tuples(st.integers(0, 20), st.one_of(
    events, st.just("sweep"), st.just("snapshot"), st.just("restart"))), max_size=40)


def assert_entries_current(store: TaskStore) -> None:
    assert json.loads(store.snapshot_json()) == json.loads(json.dumps(store.snapshot()))
    for task in store:
        assert task.entry() == wirejson.entry(task.task_id, task.to_wire())


@settings(max_examples=200, deadline=None)
@given(steps)
def test_entries_follow_every_change(steps):
    store, now = TaskStore(), T0
    for pause, step in steps:
        now += pause
        if step == "sweep":
            store.sweep(now, SweepPolicy(retention_seconds=30, stale_seconds=10))
        elif step == "snapshot":
            assert_entries_current(store)
        elif step == "restart":
            restored = TaskStore()
            restored.load(Task.from_wire(wire, now) for wire in store.snapshot().values())
            store = restored
        else:
            store.apply([step], now)
    assert_entries_current(store)


def test_an_entry_is_made_once_until_the_task_changes():
    store = TaskStore()
    store.apply([{"task_id": "a", "n": 1}], T0)
    task = store.get("a")
    assert task.cached_entry() is None
    assert task.entry() is task.entry() is task.cached_entry()
    store.apply([{"task_id": "a", "n": 2}], T0 + 1)
    assert task.cached_entry() is None and '"n":2' in task.entry()
