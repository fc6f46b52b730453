"""Adaptive stale detection in the pure store (SPEC 13): the gaps a task keeps, its own stale
time, and the sweep parking tasks past the horizon that their cadence says are not due."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from progressistad import contract
from progressistad.core import store as store_module
from progressistad.core.store import SweepPolicy, TaskStore, median
from tests.sweep_oracle import expected_sweep, policies
from tests.unit.test_sweep_queues import sweep_in_steps

T0 = 1_700_000_000.0
ADAPTIVE = SweepPolicy(stale_factor=10, stale_min_seconds=60)


def reporting(store, task_id, every, times, start=T0):
    """`times` updates of `task_id`, `every` seconds apart; the time of the last."""
    now = start
    for i in range(times):
        now = start + i * every
        store.apply([{"task_id": task_id, "n": i}], now)
    return now


def gapped_store():
    store = TaskStore()
    store.keeps_gaps = True
    return store


def test_a_task_keeps_its_last_eight_gaps_only_while_they_are_wanted():
    plain = TaskStore()
    reporting(plain, "t", 2.0, 5)
    assert plain.get("t").gaps == ()
    store = gapped_store()
    store.apply([{"task_id": "t"}, {"task_id": "t", "n": 1}], T0)  # one instant: one update
    for i, gap in enumerate([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], start=1):
        store.apply([{"task_id": "t", "n": i}], store.get("t").updated_at + gap)
    assert list(store.get("t").gaps) == [3, 4, 5, 6, 7, 8, 9, 10]
    store.apply([{"task_id": "t", "status": "close"}], store.get("t").updated_at + 1)
    assert len(store.get("t").gaps) == 8
    store.apply([{"task_id": "t", "status": "start"}], store.get("t").updated_at + 100)
    assert store.get("t").gaps == (), "a new run starts without its predecessor's cadence"


def test_gaps_are_kept_as_four_byte_floats():
    store = gapped_store()
    store.apply([{"task_id": "t"}], 0.0)
    store.apply([{"task_id": "t"}], 0.1)
    assert store.get("t").gaps[0] == pytest.approx(0.1, rel=1e-7) and \
        store.get("t").gaps[0] != 0.1


@pytest.mark.parametrize("gaps, expected", [
    ((), 30.0), ((2, 2), 30.0), ((2, 2, 2), 60.0), ((600, 600, 600), 6000.0),
    ((1, 100, 2, 3), 60.0), ((10, 20, 30, 40), 250.0), ((7, 1, 9), 70.0),
])
def test_the_stale_time_of_a_cadence(gaps, expected):
    policy = SweepPolicy(stale_seconds=30, stale_factor=10, stale_min_seconds=60)
    assert policy.stale_after(gaps) == expected
    assert median([4, 1, 3]) == 3 and median([4, 1, 3, 2]) == 2.5


def test_every_two_seconds_silent_a_minute_is_stalled_every_ten_minutes_is_not():
    store = gapped_store()
    fast = reporting(store, "fast", 2.0, 10)
    slow = reporting(store, "slow", 600.0, 4, start=fast - 3000)
    assert slow < fast
    now = fast + 61
    assert store.sweep(now, ADAPTIVE).upserted == {"fast"}
    assert store.get("slow").status == contract.UPDATE
    assert store.sweep(slow + 6000, ADAPTIVE).upserted == set()
    assert store.sweep(slow + 6000.5, ADAPTIVE).upserted == {"slow"}


def test_fewer_than_three_gaps_follow_stale_seconds():
    store = gapped_store()
    last = reporting(store, "young", 600.0, 3)  # two gaps
    never = SweepPolicy(stale_factor=10)
    assert store.sweep(last + 10_000, never).upserted == set()
    assert store.sweep(last + 10_000, SweepPolicy(stale_factor=10, stale_seconds=120)).upserted \
        == {"young"}


def test_a_parked_task_is_not_read_again_until_it_is_due(monkeypatch):
    store = gapped_store()
    last = 0.0
    for i in range(50):
        last = reporting(store, f"slow{i}", 600.0, 4)
    calls = []
    real = store_module.first_action
    monkeypatch.setattr(store_module, "first_action", lambda *a: calls.append(a) or real(*a))
    assert store.sweep(last + 100, ADAPTIVE).upserted == set()
    assert len(calls) == 50 and len(store._parked) == 50
    calls.clear()
    for later in (200, 1000, 5000):
        assert store.sweep(last + later, ADAPTIVE).upserted == set()
    assert calls == [], "parked tasks were read before they were due"
    assert len(store.sweep(last + 6001, ADAPTIVE, limit=20).upserted) == 20
    assert len(store.sweep(last + 6001, ADAPTIVE).upserted) == 30
    assert all(task.status == contract.STALE for task in store)


def test_an_event_takes_a_parked_task_back_and_max_age_still_removes_it():
    store = gapped_store()
    last = reporting(store, "slow", 600.0, 4)
    policy = SweepPolicy(stale_factor=10, max_task_age=3000)
    store.sweep(last + 100, policy)
    assert "slow" in store._parked
    store.apply([{"task_id": "slow", "n": 9}], last + 200)
    assert "slow" not in store._parked and store.get("slow").status == contract.UPDATE
    store.sweep(last + 300, policy)
    assert store.sweep(last + 3200, policy).removed == set(), "idle exactly max-task-age"
    assert store.sweep(last + 3200.5, policy).removed == {"slow"} and len(store) == 0
    assert store._parked == {}


def test_a_changed_policy_takes_the_parked_tasks_back():
    store = gapped_store()
    last = 0.0
    for i in range(3):
        last = reporting(store, f"slow{i}", 600.0, 4, start=T0 + i)
    store.apply([{"task_id": "fresh"}], last + 500)
    store.sweep(last + 100, ADAPTIVE)
    assert len(store._parked) == 3
    plain = SweepPolicy(stale_seconds=300)
    changes = store.sweep(last + 400, plain)
    assert changes.upserted == {"slow0", "slow1", "slow2"} and store._parked == {}
    assert list(store._queues["active"]) == ["fresh"]


def test_a_removed_or_restarted_parked_task_leaves_nothing_behind():
    store = gapped_store()
    last = reporting(store, "a", 600.0, 4)
    reporting(store, "b", 600.0, 4)
    store.sweep(last + 100, ADAPTIVE)
    assert store.remove("a").removed == {"a"}
    store.apply([{"task_id": "b", "status": "close"}], last + 150)
    store.apply([{"task_id": "b", "status": "start"}], last + 160)
    assert store._parked == {} and store.get("b").gaps == ()
    assert store.sweep(last + 100_000, ADAPTIVE).upserted == set()


@settings(max_examples=300, deadline=None)
@given(policies.filter(lambda policy: policy.adapts), st.sampled_from([None, 1, 2]),
       st.lists(st.tuples(st.integers(0, 12), st.one_of(
           st.fixed_dictionaries({"task_id": st.sampled_from("abcdef"),
                                  "status": st.sampled_from(contract.EVENT_STATUSES)}),
           st.just("sweep"))), max_size=60))
def test_parking_under_one_policy_acts_on_exactly_the_tasks_a_full_scan_would(policy, limit,
                                                                               steps):
    store = gapped_store()
    now = T0
    for pause, step in steps:
        now += pause
        if step == "sweep":
            gaps = {task.task_id: list(task.gaps) for task in store}
            expected = expected_sweep(store.snapshot(), now, policy, gaps)
            changes = sweep_in_steps(store, now, policy, limit)
            assert (changes.upserted, changes.removed) == expected
        else:
            store.apply([step], now)
