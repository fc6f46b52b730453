"""The kept "tasks" object: always what the store holds, made again only where a change
touched it, and dropped when nobody reads it."""

from __future__ import annotations

import json

from hypothesis import given, settings, strategies as st

from progressistad.core import tasks_json
from progressistad.core.store import TaskStore
from progressistad.core.tasks_json import TasksJson

T0 = 1_700_000_000.0
HEAD, TAIL = b'{"tasks":', b"}"


def served(store):
    return json.loads(store.tasks_message(HEAD, TAIL))["tasks"]


def applied(store, events, now=T0):
    changes = store.apply(events, now)
    store.note(changes)
    return changes


operations = st.lists(st.tuples(st.sampled_from(["event", "remove", "read", "sweep"]),
                                st.integers(0, 40)), max_size=60)


@settings(max_examples=60, deadline=None)
@given(operations)
def test_the_message_is_always_what_the_store_holds(steps):
    store = TaskStore()
    for step, (operation, number) in enumerate(steps):
        task_id = f"t{number}"
        if operation == "event":
            applied(store, [{"task_id": task_id, "n": step, "status": "update"}])
        elif operation == "remove":
            store.note(store.remove(task_id))
        elif operation == "sweep":
            store.note(store.remove_where(T0 + 10, statuses=["update"]) if number % 2 else store.annotate(
                task_id, expected_duration=float(step)))
        else:
            assert served(store) == store.snapshot()
    assert served(store) == store.snapshot()


def test_head_and_tail_go_around_the_object_and_an_empty_store_is_an_empty_object():
    store = TaskStore()
    assert store.tasks_message(b"[", b"]") == b"[{}]"
    applied(store, [{"task_id": "a"}, {"task_id": "b"}])
    assert json.loads(store.tasks_message(b"[", b"]"))[0].keys() == {"a", "b"}


class Counted(dict):
    """Tasks by id whose entries count how often they are made into a block."""

    def __init__(self, store):
        super().__init__()
        self.made = []
        for task_id in store.snapshot():
            self[task_id] = _CountedTask(store.get(task_id), self.made)


class _CountedTask:
    def __init__(self, task, made):
        self.task, self.made = task, made

    def entry(self):
        self.made.append(self.task.task_id)
        return self.task.entry()


def test_a_change_makes_again_only_the_block_of_the_task_it_touched():
    store = TaskStore()
    applied(store, [{"task_id": f"t{i}"} for i in range(4 * tasks_json.BLOCKS)])
    tasks = Counted(store)
    kept = TasksJson(tasks, clock=lambda: 0.0)
    kept.message(b"", b"")
    assert sorted(tasks.made) == sorted(tasks)
    tasks.made.clear()
    kept.message(b"", b"")
    assert tasks.made == [], "nothing changed: nothing made again"
    kept.note(store.apply([{"task_id": "t7", "n": 5}], T0))
    message = kept.message(b"", b"")
    block = hash("t7") & (tasks_json.BLOCKS - 1)
    assert "t7" in tasks.made
    assert all(hash(task_id) & (tasks_json.BLOCKS - 1) == block for task_id in tasks.made)
    assert json.loads(message)["t7"]["n"] == 5


def test_blocks_are_dropped_when_a_change_comes_long_after_the_last_read():
    now = [0.0]
    store = TaskStore()
    applied(store, [{"task_id": "a"}])
    tasks = Counted(store)
    kept = TasksJson(tasks, clock=lambda: now[0])
    kept.message(b"", b"")
    now[0] += tasks_json.KEEP_SECONDS + 1
    kept.note(store.apply([{"task_id": "a", "n": 2}], T0))
    assert kept._members is None and kept._blocks == []
    tasks.made.clear()
    assert json.loads(kept.message(b"", b""))["a"]["n"] == 2
    assert tasks.made == ["a"], "read again: made from every task"
