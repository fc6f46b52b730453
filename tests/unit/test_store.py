"""The pure task store, with an explicit `now`: updates, statuses, sweeps, limits, rate and eta."""

import pytest

from progressistad import contract
from progressistad.core.store import (
    SWEEP_KEEP,
    SWEEP_REMOVE,
    SWEEP_STALE,
    CapacityError,
    SweepPolicy,
    Task,
    TaskStore,
    sweep_action,
)

T0 = 1_700_000_000.0


def apply(store, now, **event):
    return store.apply([event], now)


def test_first_event_creates_task_with_defaults():
    store = TaskStore()
    changes = apply(store, T0, task_id="a", desc="Loading")
    task = store.get("a").to_wire()
    assert changes.upserted == {"a"} and not changes.removed
    assert task["n"] == 0 and task["total"] is None and task["desc"] == "Loading"
    assert task["status"] == contract.UPDATE
    assert task["created_at"] == task["updated_at"] == T0
    assert set(task) == set(contract.TASK_FIELDS)


def test_missing_fields_keep_previous_values():
    store = TaskStore()
    apply(store, T0, task_id="a", desc="Copy", total=100, n=5, unit="B", meta={"k": 1}, timestamp=9.5)
    apply(store, T0 + 1, task_id="a", n=10)
    task = store.get("a")
    assert (task.desc, task.total, task.n, task.unit, task.meta, task.timestamp) == (
        "Copy", 100, 10, "B", {"k": 1}, 9.5)
    assert task.created_at == T0 and task.updated_at == T0 + 1


def test_explicit_null_total_makes_total_unknown():
    store = TaskStore()
    apply(store, T0, task_id="a", total=100)
    apply(store, T0 + 1, task_id="a", total=None)
    assert store.get("a").total is None


@pytest.mark.parametrize("previous", [contract.STALE, contract.RECOVERED, contract.CLOSE, contract.ERROR])
@pytest.mark.parametrize("status", contract.EVENT_STATUSES)
def test_any_event_on_any_task_takes_the_event_status(previous, status):
    store = TaskStore()
    store.load([Task.from_wire({"task_id": "a", "n": 1, "status": previous, "updated_at": T0}, T0)])
    apply(store, T0 + 1, task_id="a", status=status)
    assert store.get("a").status == status


def test_event_without_status_is_an_update():
    store = TaskStore()
    apply(store, T0, task_id="a", status="start")
    apply(store, T0 + 1, task_id="a", n=2)
    assert store.get("a").status == contract.UPDATE


def test_done_at_set_on_finish_kept_on_repeat_and_cleared_on_reopen():
    store = TaskStore()
    apply(store, T0, task_id="a")
    apply(store, T0 + 5, task_id="a", status="close")
    apply(store, T0 + 6, task_id="a", status="error")
    assert store.get("a").done_at == T0 + 5
    apply(store, T0 + 7, task_id="a", status="update")
    assert store.get("a").done_at is None


def test_start_after_finish_begins_a_new_run():
    store = TaskStore()
    apply(store, T0, task_id="a", n=100, total=100, status="close")
    apply(store, T0 + 50, task_id="a", n=0, status="start")
    task = store.get("a")
    assert task.created_at == T0 + 50 and task.rate is None and task.done_at is None


def test_event_clears_stale_at():
    store = TaskStore()
    apply(store, T0, task_id="a")
    store.sweep(T0 + 20, SweepPolicy(stale_seconds=10))
    assert store.get("a").stale_at == T0 + 20
    apply(store, T0 + 21, task_id="a", n=1)
    assert store.get("a").stale_at is None and store.get("a").status == contract.UPDATE


# rate and eta ------------------------------------------------------------------------------

def test_rate_needs_two_samples_then_follows_steady_progress():
    store = TaskStore()
    apply(store, T0, task_id="a", n=0, total=100)
    assert store.get("a").rate is None and store.get("a").eta is None
    for second in range(1, 6):
        apply(store, T0 + second, task_id="a", n=10 * second)
    task = store.get("a")
    assert task.rate == pytest.approx(10.0)
    assert task.eta == pytest.approx(5.0)


def test_events_at_the_same_instant_fold_into_the_next_sample():
    store = TaskStore()
    apply(store, T0, task_id="a", n=0)
    store.apply([{"task_id": "a", "n": 5}, {"task_id": "a", "n": 10}], T0 + 1)
    assert store.get("a").rate == pytest.approx(10.0)


def test_rate_smooths_a_burst():
    store = TaskStore()
    apply(store, T0, task_id="a", n=0)
    for second in range(1, 11):
        apply(store, T0 + second, task_id="a", n=10 * second)
    apply(store, T0 + 10.01, task_id="a", n=200)  # 100 units in 10 ms
    assert 10 < store.get("a").rate < 1000


def test_rate_falls_after_a_pause():
    store = TaskStore()
    apply(store, T0, task_id="a", n=0)
    for second in range(1, 6):
        apply(store, T0 + second, task_id="a", n=10 * second)
    apply(store, T0 + 105, task_id="a", n=60)
    assert store.get("a").rate < 1.0


def test_restarted_count_resets_rate():
    store = TaskStore()
    apply(store, T0, task_id="a", n=0)
    apply(store, T0 + 1, task_id="a", n=50)
    apply(store, T0 + 2, task_id="a", n=3)
    assert store.get("a").rate is None
    apply(store, T0 + 3, task_id="a", n=5)
    assert store.get("a").rate == pytest.approx(2.0)


def test_eta_only_when_it_means_something():
    store = TaskStore()
    apply(store, T0, task_id="nototal", n=0)
    apply(store, T0 + 1, task_id="nototal", n=10)
    assert store.get("nototal").eta is None
    apply(store, T0, task_id="stopped", n=0, total=10)
    apply(store, T0 + 1, task_id="stopped", n=0)
    assert store.get("stopped").eta is None
    apply(store, T0, task_id="over", n=0, total=10)
    apply(store, T0 + 1, task_id="over", n=12)
    assert store.get("over").eta == 0.0
    apply(store, T0, task_id="done", n=0, total=10)
    apply(store, T0 + 1, task_id="done", n=5, status="close")
    assert store.get("done").eta is None


# sweeps ------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "status, idle, policy, expected",
    [
        ("close", 100, SweepPolicy(retention_seconds=50), SWEEP_REMOVE),
        ("error", 100, SweepPolicy(retention_seconds=50), SWEEP_REMOVE),
        ("close", 40, SweepPolicy(retention_seconds=50), SWEEP_KEEP),
        ("close", 10**9, SweepPolicy(retention_seconds=0), SWEEP_KEEP),
        ("update", 100, SweepPolicy(retention_seconds=50), SWEEP_KEEP),
        ("update", 11, SweepPolicy(stale_seconds=10), SWEEP_STALE),
        ("start", 11, SweepPolicy(stale_seconds=10), SWEEP_STALE),
        ("recovered", 11, SweepPolicy(stale_seconds=10), SWEEP_STALE),
        ("update", 10, SweepPolicy(stale_seconds=10), SWEEP_KEEP),
        ("stale", 11, SweepPolicy(stale_seconds=10), SWEEP_KEEP),
        ("close", 11, SweepPolicy(stale_seconds=10), SWEEP_KEEP),
        ("update", 10**9, SweepPolicy(stale_seconds=0), SWEEP_KEEP),
        ("stale", 31, SweepPolicy(max_task_age=30), SWEEP_REMOVE),
        ("update", 31, SweepPolicy(stale_seconds=10, max_task_age=30), SWEEP_REMOVE),
        ("close", 31, SweepPolicy(retention_seconds=0, max_task_age=30), SWEEP_REMOVE),
        ("update", 29, SweepPolicy(max_task_age=30), SWEEP_KEEP),
    ],
)
def test_sweep_action_table(status, idle, policy, expected):
    assert sweep_action(status, idle, policy) == expected


def test_sweep_marks_stale_and_removes_expired_and_reports_both():
    store = TaskStore()
    apply(store, T0, task_id="old-closed", status="close")
    apply(store, T0, task_id="idle", n=1)
    apply(store, T0 + 95, task_id="fresh", n=1)
    changes = store.sweep(T0 + 100, SweepPolicy(retention_seconds=60, stale_seconds=30))
    assert changes.removed == {"old-closed"}
    assert changes.upserted == {"idle"}
    assert store.get("idle").status == contract.STALE
    assert store.get("fresh").status == contract.UPDATE
    again = store.sweep(T0 + 101, SweepPolicy(retention_seconds=60, stale_seconds=30))
    assert not again


def test_stale_does_not_count_as_an_update_for_max_age():
    store = TaskStore()
    apply(store, T0, task_id="a")
    store.sweep(T0 + 20, SweepPolicy(stale_seconds=10, max_task_age=60))
    store.sweep(T0 + 61, SweepPolicy(stale_seconds=10, max_task_age=60))
    assert "a" not in store


def test_sweep_with_every_rule_disabled_changes_nothing():
    store = TaskStore()
    apply(store, T0, task_id="a", status="close")
    assert not store.sweep(T0 + 10**9, SweepPolicy(retention_seconds=0))
    assert "a" in store


def test_sweep_follows_update_order_not_insertion_order():
    store = TaskStore()
    apply(store, T0, task_id="first")
    apply(store, T0 + 1, task_id="second")
    apply(store, T0 + 50, task_id="first", n=1)
    changes = store.sweep(T0 + 40, SweepPolicy(stale_seconds=30))
    assert changes.upserted == {"second"}


# deletions ---------------------------------------------------------------------------------

def test_remove_reports_whether_it_removed():
    store = TaskStore()
    apply(store, T0, task_id="a")
    assert store.remove("a").removed == {"a"}
    assert not store.remove("a")


@pytest.mark.parametrize(
    "statuses, older_than, expected",
    [
        (None, None, {"a", "b", "c"}),
        ({"close"}, None, {"a"}),
        ({"close", "error"}, None, {"a", "b"}),
        (None, 50, {"a", "b"}),
        ({"error"}, 50, {"b"}),
        ({"close"}, 150, set()),
        ({"stale"}, None, set()),
    ],
)
def test_remove_where_matches_every_given_filter(statuses, older_than, expected):
    store = TaskStore()
    apply(store, T0, task_id="a", status="close")
    apply(store, T0, task_id="b", status="error")
    apply(store, T0 + 90, task_id="c")
    changes = store.remove_where(T0 + 100, statuses, older_than)
    assert changes.removed == expected
    assert {t.task_id for t in store} == {"a", "b", "c"} - expected


# max tasks ---------------------------------------------------------------------------------

def test_new_task_evicts_the_least_recently_updated_finished_task():
    store = TaskStore(max_tasks=3)
    apply(store, T0, task_id="done-old", status="close")
    apply(store, T0 + 1, task_id="done-new", status="error")
    apply(store, T0 + 2, task_id="active")
    changes = apply(store, T0 + 3, task_id="newcomer")
    assert changes.removed == {"done-old"} and changes.upserted == {"newcomer"}
    assert len(store) == 3


def test_full_of_active_tasks_refuses_new_ones_and_applies_nothing():
    store = TaskStore(max_tasks=2)
    apply(store, T0, task_id="a")
    apply(store, T0, task_id="b")
    with pytest.raises(CapacityError):
        store.apply([{"task_id": "a", "n": 5}, {"task_id": "c"}], T0 + 1)
    assert store.get("a").n == 0 and "c" not in store


def test_updates_to_existing_tasks_pass_when_full():
    store = TaskStore(max_tasks=1)
    apply(store, T0, task_id="a")
    apply(store, T0 + 1, task_id="a", n=3)
    assert store.get("a").n == 3


def test_batch_does_not_evict_a_task_it_updates():
    store = TaskStore(max_tasks=2)
    apply(store, T0, task_id="done", status="close")
    apply(store, T0, task_id="active")
    with pytest.raises(CapacityError):
        store.apply([{"task_id": "done", "status": "close"}, {"task_id": "new"}], T0 + 1)
    assert "done" in store


def test_capacity_counts_each_new_id_once():
    store = TaskStore(max_tasks=1)
    store.apply([{"task_id": "a", "n": 1}, {"task_id": "a", "n": 2}], T0)
    assert store.get("a").n == 2


def test_finishing_and_reopening_keeps_eviction_order_right():
    store = TaskStore(max_tasks=2)
    apply(store, T0, task_id="a", status="close")
    apply(store, T0 + 1, task_id="a", status="update")
    apply(store, T0 + 2, task_id="b")
    with pytest.raises(CapacityError):
        apply(store, T0 + 3, task_id="c")


# snapshot, counts, load --------------------------------------------------------------------

def test_snapshot_filters_by_status_and_counts_by_status():
    store = TaskStore()
    apply(store, T0, task_id="a", status="close")
    apply(store, T0, task_id="b")
    assert set(store.snapshot()) == {"a", "b"}
    assert set(store.snapshot({"close"})) == {"a"}
    counts = store.counts_by_status()
    assert counts["close"] == 1 and counts["update"] == 1 and counts["stale"] == 0


def test_wire_round_trip_and_load_keeps_update_order():
    store = TaskStore()
    apply(store, T0 + 5, task_id="newer", n=1)
    apply(store, T0, task_id="older", n=2, status="close")
    wire = store.snapshot()
    restored = TaskStore()
    restored.load(Task.from_wire(data, T0 + 10) for data in wire.values())
    assert restored.snapshot() == wire
    assert [t.task_id for t in restored] == ["older", "newer"]
    changes = restored.sweep(T0 + 10, SweepPolicy(max_task_age=7))
    assert changes.removed == {"older"}


def test_from_wire_ignores_unknown_keys_and_missing_n():
    task = Task.from_wire({"task_id": "x", "n": None, "recovered": True, "bogus": 1}, T0)
    assert task.n == 0 and task.to_wire()["task_id"] == "x"
