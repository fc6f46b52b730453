"""The Redis sweep reads per-status queues in limited steps; together they must do exactly what
`sweep_action` says of every task. Real redis-server (session fixture), no daemon."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from hypothesis import example, given, settings, strategies as st

pytest.importorskip("redis")

from progressistad import contract  # noqa: E402
from progressistad.cluster.service import fixed_cadence  # noqa: E402
from progressistad.cluster.store import RedisTaskStore, connect  # noqa: E402
from progressistad.core.store import SweepPolicy  # noqa: E402
from tests.cluster import layout as redis_layout  # noqa: E402
from tests.cluster.helpers import sweep_in_steps  # noqa: E402
from tests.sweep_oracle import expected_sweep, policies  # noqa: E402

T0 = 1_700_000_000.0

# Tasks shared in Redis keep no cadence: the Redis sweep applies its policy without stale_factor.
sweeps = st.tuples(policies.map(fixed_cadence), st.sampled_from([None, 1, 2, 3]))
batches = st.lists(st.fixed_dictionaries({
    "task_id": st.sampled_from("abcdefgh"),
    "status": st.sampled_from(contract.EVENT_STATUSES),
}), min_size=1, max_size=3)
steps = st.lists(st.tuples(st.integers(0, 12),
                           st.one_of(batches, sweeps, st.just("previous layout"))),
                 max_size=30)


async def play(url, steps):
    prefix = f"prop-{uuid.uuid4().hex[:12]}:"
    store = RedisTaskStore(connect(url, 5.0), prefix)
    now = T0
    try:
        await store.upgrade_layout()
        for pause, step in steps:
            now += pause
            if step == "previous layout":
                await redis_layout.as_previous_layout(store.client, prefix)
            elif isinstance(step, tuple):
                policy, limit = step
                before = await store.snapshot()
                changes = await sweep_in_steps(store, now, policy, limit)
                assert (changes.upserted, changes.removed) == expected_sweep(before, now, policy)
                assert await redis_layout.layout_problems(store.client, prefix) == []
            else:
                await store.apply(step, now, 100)
    finally:
        await store.client.delete(*store.keys)
        await store.close()


@settings(max_examples=40, deadline=None)
@given(steps=steps)
@example(steps=[  # filing a keyspace without a version key used up a step's whole limit
    (0, "previous layout"),
    (0, [{"task_id": "a", "status": "start"}, {"task_id": "b", "status": "start"}]),
    (6, (SweepPolicy(retention_seconds=0, stale_seconds=0, max_task_age=5), 1)),
])
def test_sweep_steps_act_on_exactly_the_tasks_a_full_scan_would(redis_server, steps):
    asyncio.run(play(redis_server.url, steps))


def test_a_sweep_step_acts_on_at_most_limit_tasks_idlest_first(redis_server, redis_prefix):
    async def scenario():
        store = RedisTaskStore(connect(redis_server.url, 5.0), redis_prefix)
        try:
            await store.upgrade_layout()
            for i in range(10):
                await store.apply([{"task_id": f"t{i}"}], T0 + i, 100)
            policy = SweepPolicy(stale_seconds=1)
            first, _, more = await store.sweep(T0 + 100, policy, limit=4)
            assert {task.task_id for task in first} == {"t0", "t1", "t2", "t3"} and more
            rest, _, more = await store.sweep(T0 + 100, policy, limit=100)
            assert {task.task_id for task in rest} == {f"t{i}" for i in range(4, 10)}
            assert not more
        finally:
            await store.close()

    asyncio.run(scenario())


def test_the_tasks_of_the_previous_layout_are_filed_once_in_limited_steps(redis_server,
                                                                         redis_prefix):
    async def scenario():
        store = RedisTaskStore(connect(redis_server.url, 5.0), redis_prefix)
        try:
            await store.apply([{"task_id": f"t{i}", "status": "close"} for i in range(5)], T0, 100)
            await redis_layout.as_previous_layout(store.client, redis_prefix)
            steps = [await store.upgrade_layout(limit=2) for _ in range(4)]
            assert steps == [(2, False), (2, False), (1, True), (0, True)]
            assert await redis_layout.layout_problems(store.client, redis_prefix) == []
        finally:
            await store.close()

    asyncio.run(scenario())


def service_on(url, prefix, clock):
    from progressistad.cluster.link import Link
    from progressistad.cluster.mirror import TaskMirror
    from progressistad.cluster.service import RedisTaskService

    backend = RedisTaskStore(connect(url, 5.0), prefix, owner="me")
    return RedisTaskService(backend, TaskMirror(), Link(clock), clock,
                            SweepPolicy(stale_seconds=10), lease_seconds=30)


def test_the_group_sweep_runs_in_steps_each_announced(redis_server, redis_prefix, monkeypatch):
    monkeypatch.setattr("progressistad.cluster.service.SWEEP_CHUNK", 3)
    now = [T0]

    async def scenario():
        service = service_on(redis_server.url, redis_prefix, lambda: now[0])
        steps = []
        service.add_listener(lambda changes: steps.append(sorted(changes.upserted)))
        try:
            await service.backend.upgrade_layout()
            await service.ingest([{"task_id": f"t{i}"} for i in range(7)])
            steps.clear()
            now[0] += 60
            changes = await service.sweep()
            assert changes.upserted == {f"t{i}" for i in range(7)}
            assert [len(step) for step in steps] == [3, 3, 1]
            assert service.cleanup_leader and service.sweeps_run == 1
            assert {t["status"] for t in service.store.snapshot().values()} == {"stale"}
        finally:
            await service.backend.close()

    asyncio.run(scenario())


def test_a_group_sweep_that_loses_the_lease_between_steps_stops(redis_server, redis_prefix,
                                                                 monkeypatch):
    monkeypatch.setattr("progressistad.cluster.service.SWEEP_CHUNK", 3)
    now = [T0]

    async def scenario():
        service = service_on(redis_server.url, redis_prefix, lambda: now[0])
        backend = service.backend
        one_step = backend.sweep

        async def step_then_lose_the_lease(*args, **kwargs):
            result = await one_step(*args, **kwargs)
            await backend.client.set(redis_prefix + "cleanup-lease", "another daemon")
            return result

        try:
            await backend.upgrade_layout()
            await service.ingest([{"task_id": f"t{i}"} for i in range(7)])
            now[0] += 60
            backend.sweep = step_then_lose_the_lease
            changes = await service.sweep()
            assert changes.upserted == {"t0", "t1", "t2"}
            assert not service.cleanup_leader and service.sweeps_run == 0
        finally:
            await backend.close()

    asyncio.run(scenario())


def test_a_daemon_joining_files_the_previous_layout_in_steps(redis_server, redis_prefix,
                                                             monkeypatch, caplog):
    from progressistad.cluster.group import Cluster

    monkeypatch.setattr("progressistad.cluster.group.SWEEP_CHUNK", 3)

    async def scenario():
        store = RedisTaskStore(connect(redis_server.url, 5.0), redis_prefix)
        cluster = Cluster(redis_server.url, redis_prefix)
        try:
            await store.apply([{"task_id": f"t{i}", "status": "error"} for i in range(7)], T0, 100)
            await redis_layout.as_previous_layout(store.client, redis_prefix)
            cluster.build_service(SweepPolicy(), 5.0)
            await cluster.start()
            assert await redis_layout.layout_problems(store.client, redis_prefix) == []
            assert len(cluster.mirror) == 7
        finally:
            await cluster.close()
            await store.close()

    with caplog.at_level("INFO", logger="progressistad.cluster"):
        asyncio.run(scenario())
    assert "filed 7 task(s) of the previous Redis key layout" in caplog.text
