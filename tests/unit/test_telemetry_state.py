"""Telemetry across a restart: the state file keeps metrics, postfix and the log tail (series
stay in memory), sanitizes them on the way back, and loads files written without them."""

from __future__ import annotations

import asyncio
import json

from progressistad import contract
from progressistad.core.statefile import TAIL_KEY, decode, encode, pending_entry, state_form
from progressistad.core.store import TaskStore
from progressistad.daemon.persistence.persister import StatePersister
from progressistad.web.metrics import Metrics

NOW = 1_700_000_000.0


def with_telemetry(store, task_id="a", status="update"):
    store.apply([{"task_id": task_id, "status": status, "n": 5, "metrics": {"loss": 0.5, "epoch": 3},
                  "postfix": "loss=0.5", "log": ["one", "two é", "three"]}], NOW - 10)
    store.sample(NOW - 10, [task_id])
    return store.get(task_id)


def round_trip(store):
    text = encode({task.task_id: state_form(task) for task in store}, NOW)
    return text, decode(text.encode(), NOW)


def test_metrics_postfix_and_tail_survive_a_round_trip_and_series_do_not():
    store = TaskStore()
    with_telemetry(store)
    store.apply([{"task_id": "plain", "n": 1}], NOW - 5)
    text, (tasks, wire, skipped) = round_trip(store)
    assert skipped == []
    restored = {task.task_id: task for task in tasks}
    task = restored["a"]
    assert task.metrics == {"loss": 0.5, "epoch": 3} and task.postfix == "loss=0.5"
    assert task.log_tail() == ["one", "two é", "three"]
    assert (task.last_log, task.log_lines) == ("three", 3)
    assert task.series_wire()["t"] == []
    assert TAIL_KEY not in json.loads(text)["tasks"]["plain"]
    assert wire["a"] == state_form(task) and wire["plain"] == restored["plain"].to_wire()
    fresh = TaskStore()
    fresh.load(tasks)
    assert fresh.telemetry_bytes > 0
    fresh.apply([{"task_id": "a", "log": ["four"], "metrics": {"loss": None}}], NOW)
    assert fresh.get("a").log_tail()[-2:] == ["three", "four"] and fresh.get("a").metrics == {"epoch": 3}


def test_files_written_without_telemetry_load_as_tasks_without_it():
    older = {"version": 2, "saved_at": NOW - 1, "tasks": {
        "a": {"task_id": "a", "n": 3, "total": 10, "status": "update", "updated_at": NOW - 2},
        "b": {"task_id": "b", "n": 1, "status": "close", "updated_at": NOW - 3, "done_at": NOW - 3},
    }}
    tasks, wire, skipped = decode(json.dumps(older).encode(), NOW)
    assert skipped == [] and len(tasks) == 2
    for task in tasks:
        served = task.to_wire()
        assert set(served) == set(contract.TASK_FIELDS)
        assert (served["metrics"], served["postfix"], served["last_log"], served["log_lines"]) == (
            None, None, None, 0)
        assert TAIL_KEY not in wire[task.task_id]


def decoded_entry(**fields):
    document = {"tasks": {"a": {"task_id": "a", "updated_at": NOW - 1, **fields}}}
    tasks, wire, _ = decode(json.dumps(document).encode(), NOW)
    return tasks[0], wire["a"]


def test_bad_metrics_are_dropped_key_by_key_and_at_most_sixteen_kept():
    task, _ = decoded_entry(metrics={"ok": 1.5, "int": 2, "bool": True, "text": "1", "none": None,
                                     "": 1, "k" * 65: 1, "list": [1], "huge": 10 ** 400})
    assert task.metrics == {"ok": 1.5, "int": 2}
    many = {f"m{i:02d}": i for i in range(contract.METRICS_MAX_KEYS + 4)}
    task, _ = decoded_entry(metrics=many)
    assert list(task.metrics) == list(many)[:contract.METRICS_MAX_KEYS]
    for bad in ([1, 2], "loss", 5, {}, {"a": "b"}):
        assert decoded_entry(metrics=bad)[0].metrics is None


def test_a_bad_postfix_is_cut_or_dropped():
    assert decoded_entry(postfix="p" * 300)[0].postfix == "p" * contract.POSTFIX_MAX_CHARS
    assert decoded_entry(postfix=5)[0].postfix is None


def test_a_bad_tail_keeps_its_last_lines_that_are_strings_cut_to_the_line_limit():
    lines = [f"line {i}" for i in range(120)] + [5, None, ["x"]]
    task, wire = decoded_entry(log_tail=lines, last_log="forged", log_lines=7)
    assert task.log_tail() == [f"line {i}" for i in range(20, 120)]
    assert (wire["last_log"], wire["log_lines"]) == ("line 119", contract.LOG_TAIL_LINES)
    long = "€" * 400  # 1,200 bytes of UTF-8
    task, _ = decoded_entry(log_tail=["a" * 2000, long])
    assert task.log_tail() == ["a" * contract.LOG_LINE_MAX_BYTES, "€" * (contract.LOG_LINE_MAX_BYTES // 3)]
    for bad in ("one line", 5, {"a": 1}, []):
        task, wire = decoded_entry(log_tail=bad)
        assert task.log_lines == 0 and TAIL_KEY not in wire


def test_the_writer_gets_the_cached_entry_without_a_tail_and_the_state_form_with_one():
    store = TaskStore()
    store.apply([{"task_id": "plain", "n": 1, "metrics": {"a": 1}}], NOW)
    plain = store.get("plain")
    assert pending_entry(plain) == plain.to_wire()
    assert pending_entry(plain) is not plain.to_wire()
    text = plain.entry()
    assert pending_entry(plain) is text
    task = with_telemetry(store)
    task.entry()
    assert pending_entry(task) == {**task.to_wire(), TAIL_KEY: ["one", "two é", "three"]}


def test_the_persister_writes_the_tail_and_a_restart_restores_it(tmp_path):
    path = str(tmp_path / "state.json")

    async def first_run():
        store = TaskStore()
        persister = StatePersister(path, 0.01, store, Metrics(), clock=lambda: NOW)
        persister.on_changes(store.apply(
            [{"task_id": "a", "metrics": {"loss": 0.1}, "postfix": "p", "log": ["x", "y"]}], NOW))
        persister.on_changes(store.apply([{"task_id": "a", "log": ["z"]}], NOW + 1))
        assert await persister.close()

    async def second_run():
        store = TaskStore()
        persister = StatePersister(path, 0.01, store, Metrics(), clock=lambda: NOW + 2)
        assert persister.load() == 1
        await persister.close()
        return store

    asyncio.run(first_run())
    store = asyncio.run(second_run())
    task = store.get("a")
    assert (task.metrics, task.postfix, task.log_tail()) == ({"loss": 0.1}, "p", ["x", "y", "z"])
    assert task.status == contract.RECOVERED
