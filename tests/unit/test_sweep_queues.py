"""The sweep reads per-status queues; it must do exactly what `sweep_action` says of every task."""

from hypothesis import given, settings, strategies as st

from progressistad import contract
from progressistad.core.store import SweepPolicy, Task, TaskStore
from tests.sweep_oracle import expected_sweep, policies

T0 = 1_700_000_000.0

events = st.fixed_dictionaries({
    "task_id": st.sampled_from("abcdef"),
    "status": st.sampled_from(contract.EVENT_STATUSES),
})
steps = st.lists(st.tuples(st.integers(0, 12), st.one_of(events, policies)), max_size=40)


def sweep_in_steps(store: TaskStore, now: float, policy: SweepPolicy, limit):
    """Call a limited sweep again while it comes back full, as `TaskService.sweep` does."""
    done = store.sweep(now, policy, limit)
    step = done
    while limit is not None and len(step.upserted) + len(step.removed) == limit:
        step = store.sweep(now, policy, limit)
        done.merge(step)
    return done


@settings(max_examples=300, deadline=None)
@given(steps, st.sampled_from([None, 1, 2]))
def test_sweep_acts_on_exactly_the_tasks_a_full_scan_would(steps, limit):
    store = TaskStore()
    store.keeps_gaps = True
    now = T0
    for pause, step in steps:
        now += pause
        if isinstance(step, SweepPolicy):
            gaps = {task.task_id: list(task.gaps) for task in store}
            stale, removed = expected_sweep(store.snapshot(), now, step, gaps)
            changes = sweep_in_steps(store, now, step, limit)
            assert (changes.upserted, changes.removed) == (stale, removed)
            assert all(store.get(i).status == contract.STALE for i in stale)
            assert not removed & {t.task_id for t in store}
        else:
            store.apply([step], now)


def test_a_limited_sweep_acts_on_at_most_limit_tasks_oldest_first():
    store = TaskStore()
    for i in range(10):
        store.apply([{"task_id": f"t{i}"}], T0 + i)
    policy = SweepPolicy(stale_seconds=1)
    first = store.sweep(T0 + 100, policy, limit=4)
    assert first.upserted == {"t0", "t1", "t2", "t3"}
    rest = store.sweep(T0 + 100, policy, limit=100)
    assert rest.upserted == {f"t{i}" for i in range(4, 10)}


def test_kept_finished_tasks_do_not_hold_back_stale_marking():
    """Finished tasks idle past stale-seconds but inside retention sit in their own queue."""
    store = TaskStore()
    store.apply([{"task_id": "done", "status": "close"}], T0)
    store.apply([{"task_id": "running"}], T0 + 1)
    policy = SweepPolicy(retention_seconds=3600, stale_seconds=10)
    assert store.sweep(T0 + 20, policy, limit=1).upserted == {"running"}


def test_restored_tasks_join_the_queue_of_their_status():
    store = TaskStore()
    restored = Task.from_wire({"task_id": "r", "status": contract.RECOVERED, "updated_at": T0}, T0)
    closed = Task.from_wire({"task_id": "c", "status": contract.CLOSE, "updated_at": T0}, T0)
    store.load([restored, closed])
    changes = store.sweep(T0 + 100, SweepPolicy(retention_seconds=50, stale_seconds=50))
    assert changes.upserted == {"r"} and changes.removed == {"c"}
