"""The state file layout: round trip, the earlier build's files, corrupt files, odd entries."""

from __future__ import annotations

import json

import pytest

from progressistad import contract
from progressistad.core.statefile import StateFileError, decode, encode
from progressistad.core.store import Task, TaskStore

NOW = 1_700_000_000.0


def stored(task_id, status, now=NOW - 100):
    store = TaskStore()
    store.apply([{"task_id": task_id, "status": status, "n": 3, "total": 10,
                  "desc": "d", "meta": {"host": "h"}}], now)
    return store.get(task_id).to_wire()


def test_round_trip_keeps_fields_and_maps_statuses():
    wire = {status: stored(status, status) for status in contract.EVENT_STATUSES}
    text = encode(wire, NOW)
    document = json.loads(text)
    assert document["version"] == contract.STATE_FILE_VERSION
    assert document["saved_at"] == NOW
    tasks, wire_back, skipped = decode(text.encode(), NOW)
    assert skipped == []
    by_id = {task.task_id: task for task in tasks}
    assert {k: t.to_wire() for k, t in by_id.items()} == wire_back
    assert set(by_id) == set(contract.EVENT_STATUSES)
    assert by_id["close"].status == "close" and by_id["error"].status == "error"
    assert by_id["start"].status == by_id["update"].status == contract.RECOVERED
    restored = by_id["update"].to_wire()
    for field in ("n", "total", "desc", "meta", "created_at", "updated_at"):
        assert restored[field] == wire["update"][field]


def test_encoding_in_chunks_matches_one_piece():
    wire = {f"t{i}": stored(f"t{i}", "update") for i in range(1203)}
    assert json.loads(encode(wire, NOW))["tasks"] == json.loads(json.dumps(wire))


def test_earlier_build_file_loads():
    """The FastAPI build wrote version "0.2.1", free-text statuses and recovered/recovered_at."""
    old = {
        "tasks": {
            "train": {"task_id": "train", "desc": "Training", "total": 100.0, "n": 42.0,
                      "unit": "it", "status": "running", "created_at": NOW - 500,
                      "updated_at": NOW - 60, "timestamp": NOW - 61},
            "etl": {"task_id": "etl", "n": 5, "status": "close", "created_at": NOW - 900,
                    "updated_at": NOW - 800, "done_at": NOW - 800, "recovered": True,
                    "recovered_at": NOW - 700},
            "idle": {"task_id": "idle", "status": "stale", "updated_at": NOW - 300,
                     "stale_at": NOW - 200},
            "bare": {"n": 1},
        },
        "version": "0.2.1",
        "saved_at": NOW - 10,
    }
    tasks, _, skipped = decode(json.dumps(old).encode(), NOW)
    assert skipped == []
    by_id = {task.task_id: task.to_wire() for task in tasks}
    assert by_id["train"]["status"] == contract.RECOVERED
    assert (by_id["train"]["n"], by_id["train"]["total"], by_id["train"]["unit"]) == (42.0, 100.0, "it")
    assert by_id["etl"]["status"] == "close" and "recovered" not in by_id["etl"]
    assert by_id["idle"]["status"] == "stale"
    assert by_id["bare"]["updated_at"] == NOW - 10  # no timestamp: the file's saved_at


@pytest.mark.parametrize("raw", [b"", b"{", b"[1, 2]", b'{"version": 2}', b'{"tasks": []}',
                                 b"\xff\xfe garbage", b'{"tasks": {"a": ' + b"[" * 100_000])
def test_corrupt_files_raise(raw):
    with pytest.raises(StateFileError):
        decode(raw, NOW)


def test_entries_that_are_not_tasks_are_skipped_and_bad_fields_cleaned():
    raw = json.dumps({"tasks": {
        "ok": {"n": -5, "total": "many", "desc": 7, "meta": [1], "status": "update"},
        "list": [1, 2],
        "": {"n": 1},
        "x" * 300: {"n": 1},
    }}).encode()
    tasks, _, skipped = decode(raw, NOW)
    assert [task.task_id for task in tasks] == ["ok"]
    assert len(skipped) == 3
    wire = tasks[0].to_wire()
    assert (wire["n"], wire["total"], wire["desc"], wire["meta"]) == (0, None, None, None)


def test_restored_tasks_load_into_the_store_in_update_order():
    wire = {"b": stored("b", "update", NOW - 10), "a": stored("a", "update", NOW - 20)}
    tasks = decode(encode(wire, NOW).encode(), NOW).tasks
    store = TaskStore()
    store.load(tasks)
    assert [task.task_id for task in store] == ["a", "b"]
    assert isinstance(store.get("a"), Task)
