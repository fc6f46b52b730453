"""The fast restore path (statefile.decode, Task.from_wire, TaskStore.load) gives the same tasks
as the rules it replaced, for arbitrary state-file entries, valid and invalid."""

from __future__ import annotations

import json
import math
from typing import Any, Dict, List, Optional

from hypothesis import given, settings, strategies as st

from progressistad import contract
from progressistad.core.statefile import decode, restore_entry, state_form
from progressistad.core.store import Task, TaskStore
from progressistad.core.telemetry import LogTail

NOW = 1_700_000_000.0
PRIVATE = ("_sample_n", "_sample_t", "_avg_dn", "_avg_dt", "_weight")


# ---- the rules as they were (commit 8304caf), kept here as the reference

def old_number(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return value if math.isfinite(value) else None
    except OverflowError:  # the old rule let this escape and the daemon died at start
        return None


def old_non_negative(value: Any) -> Optional[float]:
    number = old_number(value)
    return number if number is not None and number >= 0 else None


def old_text(value: Any, limit: int) -> Optional[str]:
    return value[:limit] if isinstance(value, str) else None


def old_restored_status(status: Any) -> str:
    if not isinstance(status, str):  # the old rule raised TypeError for a list or an object
        return contract.RECOVERED
    return status if status in (contract.CLOSE, contract.ERROR, contract.STALE) else contract.RECOVERED


def old_restore_entry(key: str, entry: Any, now: float,
                      saved_at: Optional[float]) -> Optional[Dict[str, Any]]:
    if not isinstance(entry, dict):
        return None
    task_id = entry.get("task_id", key)
    if not isinstance(task_id, str) or not task_id or len(task_id) > contract.TASK_ID_MAX_CHARS:
        return None
    updated_at = old_number(entry.get("updated_at"))
    if updated_at is None:
        updated_at = saved_at if saved_at is not None else now
    created_at = old_number(entry.get("created_at"))
    clean: Dict[str, Any] = {
        "task_id": task_id,
        "desc": old_text(entry.get("desc"), contract.DESC_MAX_CHARS),
        "total": old_non_negative(entry.get("total")),
        "n": old_non_negative(entry.get("n")) or 0,
        "unit": old_text(entry.get("unit"), contract.UNIT_MAX_CHARS),
        "status": old_restored_status(entry.get("status")),
        "timestamp": old_number(entry.get("timestamp")),
        "meta": entry.get("meta") if isinstance(entry.get("meta"), dict) else None,
        "created_at": created_at if created_at is not None else updated_at,
        "updated_at": updated_at,
        "done_at": old_number(entry.get("done_at")),
        "stale_at": old_number(entry.get("stale_at")),
        "rate": None,
        "eta": None,
    }
    if clean["status"] in contract.FINISHED_STATUSES:
        clean["rate"] = old_number(entry.get("rate"))
    clean.update(telemetry_rule(entry))
    return clean


# ---- the rule for the telemetry fields (metrics, postfix, log tail), added with them

def telemetry_rule(entry: Dict[str, Any]) -> Dict[str, Any]:
    metrics = entry.get("metrics")
    kept: Dict[str, Any] = {}
    if isinstance(metrics, dict):
        for key, value in metrics.items():
            if len(kept) < contract.METRICS_MAX_KEYS and 1 <= len(key) <= contract.METRIC_KEY_MAX_CHARS \
                    and old_number(value) is not None:
                kept[key] = value
    tail = entry.get("log_tail")
    lines = [line for line in tail if isinstance(line, str)] if isinstance(tail, list) else []
    lines = [cut(line) for line in lines[-contract.LOG_TAIL_LINES:]]
    clean = {
        "metrics": kept or None,
        "postfix": old_text(entry.get("postfix"), contract.POSTFIX_MAX_CHARS),
        "last_log": lines[-1] if lines else None,
        "log_lines": len(lines),
    }
    if lines:
        clean["log_tail"] = lines
    return clean


def cut(line: str) -> str:
    while len(line.encode("utf-8", "surrogatepass")) > contract.LOG_LINE_MAX_BYTES:
        line = line[:-1]
    return line


def old_from_wire(data: Dict[str, Any], now: float) -> Task:
    task = Task(str(data["task_id"]), now)
    for name in contract.TASK_FIELDS:
        if name in data and name not in ("task_id", "last_log", "log_lines"):
            setattr(task, name, data[name])
    task.metrics = dict(task.metrics) if isinstance(task.metrics, dict) and task.metrics else None
    if data.get("log_tail"):
        task._tail = LogTail(data["log_tail"])
    task.n = task.n if task.n is not None else 0
    task._sample_n = task.n
    task._sample_t = task.updated_at
    return task


def old_decode(raw: bytes, now: float):
    document = json.loads(raw.decode("utf-8"))
    saved_at = old_number(document.get("saved_at"))
    tasks: List[Task] = []
    skipped: List[str] = []
    for key, entry in document["tasks"].items():
        clean = old_restore_entry(key, entry, now, saved_at)
        if clean is None:
            skipped.append(str(key)[:80])
        else:
            tasks.append(old_from_wire(clean, now))
    return tasks, skipped


def old_load(store: TaskStore, tasks: List[Task]) -> None:
    for task in sorted(tasks, key=lambda t: t.updated_at):
        store._detach(task.task_id)
        store._insert(task)


# ---- arbitrary entries, as json.loads hands them over

NUMBERS = (st.integers(min_value=-10**400, max_value=10**400) | st.integers(-3, 3)
           | st.floats(allow_nan=True, allow_infinity=True)
           | st.sampled_from([2**1024 - 2**970, 2**1024 - 2**970 - 1, -(2**1024 - 2**970),
                             -(2**1024 - 2**970 - 1), NOW - 5, NOW + 5]))
VALUES = (st.none() | st.booleans() | NUMBERS | st.text(max_size=10)
          | st.sampled_from(contract.STATUSES + ("running", "Close", ""))
          | st.text(min_size=60, max_size=70) | st.text(min_size=1020, max_size=1030)
          | st.lists(st.integers(), max_size=2)
          | st.dictionaries(st.text(max_size=3), st.integers() | st.floats(), max_size=2)
          | st.dictionaries(st.text(max_size=66), NUMBERS | st.booleans() | st.none(), max_size=20)
          | st.lists(st.text(max_size=4) | st.integers() | st.text(min_size=256, max_size=1100),
                     max_size=104))
TASK_IDS = st.sampled_from(["a", "b", "c", "", "x" * 256, "x" * 257]) | st.text(max_size=4)
ENTRY = st.dictionaries(
    st.sampled_from(contract.TASK_FIELDS + ("recovered", "recovered_at", "log_tail")) | st.text(max_size=3),
    VALUES, max_size=16,
) | st.fixed_dictionaries(
    {"task_id": TASK_IDS},
    optional={name: VALUES for name in contract.TASK_FIELDS[1:] + ("recovered", "log_tail")},
) | VALUES
DOCUMENTS = st.fixed_dictionaries(
    {"tasks": st.dictionaries(TASK_IDS, ENTRY, max_size=8)},
    optional={"saved_at": VALUES, "version": st.sampled_from([2, "0.2.1"])},
)


def state(task: Task) -> str:
    """Every slot of a task, as text: NaN inside meta compares equal this way."""
    fields = task.to_wire()
    fields.update((name, getattr(task, name)) for name in PRIVATE)
    fields["log_tail"] = task.log_tail()
    return json.dumps(fields)


def store_state(store: TaskStore) -> List[Any]:
    return [[state(task) for task in store], [list(queue) for queue in store._queues.values()]]


@settings(max_examples=600, deadline=None)
@given(DOCUMENTS)
def test_decode_and_load_restore_what_the_old_rules_restored(document):
    raw = json.dumps(document).encode()
    old_tasks, old_skipped = old_decode(raw, NOW)
    new = decode(raw, NOW)
    assert new.skipped == old_skipped
    assert [state(task) for task in new.tasks] == [state(task) for task in old_tasks]
    old_store, new_store = TaskStore(), TaskStore()
    old_load(old_store, old_tasks)
    new_store.load(new.tasks)
    assert store_state(new_store) == store_state(old_store)
    # The state form kept for the next write is the task the store kept.
    served = {task.task_id: state_form(task) for task in new_store}
    assert json.dumps(new.wire, sort_keys=True) == json.dumps(served, sort_keys=True)
    # Rate and ETA carry on from a restored task exactly as before.
    for old, fresh in zip(old_tasks, new.tasks):
        event = {"task_id": old.task_id, "n": 50, "total": 100}
        old.apply(event, NOW + 10)
        fresh.apply(event, NOW + 10)
        assert state(fresh) == state(old)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=4), ENTRY, VALUES)
def test_restore_entry_matches_the_old_rule(key, entry, saved_at):
    entry = json.loads(json.dumps(entry))
    saved = old_number(saved_at)
    expected = old_restore_entry(key, entry, NOW, saved)
    assert json.dumps(restore_entry(key, entry, NOW, saved)) == json.dumps(expected)


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({"task_id": st.text(max_size=3)},
                             optional={name: VALUES for name in contract.TASK_FIELDS[1:] + ("x",)}))
def test_from_wire_matches_the_old_rule_for_partial_forms(data):
    assert state(Task.from_wire(data, NOW)) == state(old_from_wire(data, NOW))


def test_an_integer_too_large_for_a_float_is_cleaned_not_fatal():
    raw = b'{"saved_at": 1' + b"0" * 400 + b', "tasks": {"a": {"n": 1' + b"0" * 400 + b', "status": []}}}'
    tasks, wire, skipped = decode(raw, NOW)
    assert skipped == []
    assert (wire["a"]["n"], wire["a"]["updated_at"], wire["a"]["status"]) == (0, NOW, "recovered")


def test_a_repeated_task_id_keeps_the_latest_update_in_store_and_wire():
    document = {"tasks": {
        "late": {"task_id": "t", "n": 2, "updated_at": NOW - 1},
        "early": {"task_id": "t", "n": 1, "updated_at": NOW - 50},
    }}
    decoded = decode(json.dumps(document).encode(), NOW)
    store = TaskStore()
    store.load(decoded.tasks)
    assert store.get("t").n == 2
    assert decoded.wire["t"]["n"] == 2
