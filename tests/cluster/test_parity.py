"""The Lua scripts against the pure store: identical event sequences must give identical tasks.

One group of tests per rule the scripts restate (test_apply_*, test_rate_*, test_eta_*,
test_make_room_*, test_sweep_*, test_telemetry_*), then random sequences of everything.
Every step compares the tasks as served and their log tails, and finds no telemetry left
behind a task that is gone. Needs a real redis-server (started by the session fixture); no
daemon, no sockets of ours.
"""

from __future__ import annotations

import asyncio
import random

import pytest

pytest.importorskip("redis")

from progressistad.cluster.store import RedisTaskStore, connect  # noqa: E402
from progressistad.cluster.records import decode_ids  # noqa: E402
from progressistad.core.store import (  # noqa: E402
    CapacityError, EventRefused, SweepPolicy, TaskStore,
)
from tests.cluster import layout as redis_layout  # noqa: E402
from tests.cluster.helpers import sweep_in_steps  # noqa: E402

PREVIOUS_RELEASE = {
    "wrote": redis_layout.as_previous_release_wrote,
    "removed": redis_layout.as_previous_release_removed,
    "marked_stale": redis_layout.as_previous_release_marked_stale,
}


class Pair:
    """The pure store and a Redis store fed the same operations; each step compares both."""

    def __init__(self, url: str, prefix: str, max_tasks: int = 10000) -> None:
        self.memory = TaskStore(max_tasks=max_tasks)
        self.url, self.prefix, self.max_tasks = url, prefix, max_tasks
        self.steps = []
        self.orphans_left = False
        """A daemon of the previous release removed a task, leaving its telemetry in Redis."""

    def apply(self, events, now):
        self.steps.append(("apply", events, now))
        return self

    def sweep(self, now, limit=None, **policy):
        """A sweep; with `limit`, Redis sweeps in steps of that many tasks until one comes back
        short, and the steps together must do what one full sweep of the pure store does."""
        self.steps.append(("sweep", SweepPolicy(**policy), now, limit))
        return self

    def previous_layout(self):
        """Redis only: the keyspace as the previous release would hold it (a daemon upgraded)."""
        self.steps.append(("previous_layout",))
        return self

    def check_layout(self):
        """Redis only: the layout's invariant must hold here (it is checked after every step
        but while entries a previous release left may remain)."""
        self.steps.append(("check_layout",))
        return self

    def previous_release(self, what, task_id):
        """Redis only: what a daemon of the previous release, still in the group, leaves."""
        self.steps.append(("previous_release", what, task_id))
        return self

    def remove(self, task_id):
        self.steps.append(("remove", task_id))
        return self

    def remove_where(self, now, statuses=None, older_than=None):
        self.steps.append(("remove_where", now, statuses, older_than))
        return self

    def run(self):
        asyncio.run(self._run())

    async def _run(self):
        redis_store = RedisTaskStore(connect(self.url, 5.0), self.prefix)
        await redis_store.upgrade_layout()  # as a daemon does when it joins the group
        left = set()
        """What the previous release left since the layout's invariant last held."""
        try:
            for index, step in enumerate(self.steps):
                kind = step[0]
                if kind in ("previous_layout", "previous_release"):
                    await self._downgrade(redis_store.client, step)
                    left.add(kind)
                    continue
                if kind != "check_layout":
                    await self._compare(redis_store, index, step)
                # Sweeps file the tasks of a previous layout at once; entries a previous
                # release still in the group leaves are set right as sweeps reach them.
                upgrades = kind == "sweep" or kind == "remove_where" and step[3] is not None
                if kind == "check_layout" or upgrades and left == {"previous_layout"}:
                    left.clear()
                if not left:
                    problems = await redis_layout.layout_problems(redis_store.client, self.prefix)
                    assert not problems, f"step {index} {kind}: {problems}"
        finally:
            await redis_store.close()

    async def _compare(self, redis_store, index, step):
        expected = self._memory_step(step)
        got = await self._redis_step(redis_store, step)
        assert got == expected, f"step {index} {step[0]}: changes differ"
        snapshot = await redis_store.snapshot()
        assert snapshot == self.memory.snapshot(), f"step {index} {step[0]}: tasks differ"
        for task in self.memory:
            tail = await redis_store.log_tail(task.task_id)
            assert tail == task.log_tail(), f"step {index} {step[0]}: tails of {task.task_id!r} differ"
        if not self.orphans_left:
            await self._check_no_telemetry_left(redis_store, index, step)

    async def _check_no_telemetry_left(self, redis_store, index, step):
        """Telemetry and tails are kept for tasks only, and a tail only for a task with lines."""
        client = redis_store.client
        tasks = set(decode_ids(b"\0".join(await client.hkeys(self.prefix + "tasks"))))
        for name in ("telemetry", "logs"):
            held = set(decode_ids(b"\0".join(await client.hkeys(self.prefix + name))))
            assert held <= tasks, f"step {index} {step[0]}: {name} of {sorted(held - tasks)}"
        logged = set(decode_ids(b"\0".join(await client.hkeys(self.prefix + "logs"))))
        assert logged == {task.task_id for task in self.memory if task.log_lines}, \
            f"step {index} {step[0]}: tails kept"

    async def _downgrade(self, client, step):
        if step[0] == "previous_layout":
            await redis_layout.as_previous_layout(client, self.prefix)
            return
        await PREVIOUS_RELEASE[step[1]](client, self.prefix, step[2])
        if step[1] == "removed":
            self.memory.remove(step[2])
            self.orphans_left = True

    def _memory_step(self, step):
        kind = step[0]
        try:
            if kind == "apply":
                changes = self.memory.apply(step[1], step[2])
            elif kind == "sweep":
                changes = self.memory.sweep(step[2], step[1])  # one full sweep
            elif kind == "remove":
                changes = self.memory.remove(step[1])
            else:
                changes = self.memory.remove_where(step[1], step[2], step[3])
        except CapacityError as error:
            return ("capacity", error.needed)
        except EventRefused as refused:
            return ("refused", refused.index, refused.field, refused.problem)
        return (sorted(changes.upserted), sorted(changes.removed))

    async def _redis_step(self, store, step):
        kind = step[0]
        try:
            if kind == "apply":
                upserted, removed = await store.apply(step[1], step[2], self.max_tasks)
            elif kind == "sweep":
                changes = await sweep_in_steps(store, step[2], step[1], step[3])
                return (sorted(changes.upserted), sorted(changes.removed))
            elif kind == "remove":
                upserted, removed = [], await store.remove(step[1])
            else:
                upserted, removed = [], await store.remove_where(step[1], step[2], step[3])
        except CapacityError as error:
            return ("capacity", error.needed)
        except EventRefused as refused:
            return ("refused", refused.index, refused.field, refused.problem)
        return (sorted(t.task_id for t in upserted), sorted(removed))


@pytest.fixture
def pair(redis_server, redis_prefix):
    def make(max_tasks=10000):
        return Pair(redis_server.url, redis_prefix, max_tasks)
    return make


def test_apply_partial_updates_and_null_handling(pair):
    (pair()
     .apply([{"task_id": "a", "desc": "copy", "total": 10, "n": 0, "unit": "B", "status": "start",
              "meta": {"host": "h1", "list": [], "nested": {"x": 1.5}}}], 1000.0)
     .apply([{"task_id": "a", "n": 3}], 1001.0)
     .apply([{"task_id": "a", "desc": "copy 2", "timestamp": 12.25}], 1001.5)
     .apply([{"task_id": "a", "total": None, "n": 4}], 1002.0)
     .apply([{"task_id": "a", "total": 20, "meta": {}}], 1003.0)
     .run())


def test_rate_smoothing_pauses_restarts_and_eta(pair):
    events = [(1000.0, 0), (1001.0, 10), (1001.0, 12), (1003.0, 40), (1003.5, 41), (1010.0, 41),
              (1011.0, 5), (1012.0, 30), (1012.7, 99), (1013.0, 100)]
    steps = pair()
    steps.apply([{"task_id": "r", "total": 100, "status": "start"}], 999.0)
    for now, n in events:
        steps.apply([{"task_id": "r", "n": n}], now)
    steps.run()


def test_rate_that_overflows_is_null(pair):
    """Counts near the float limit make the ratio infinite: JSON has no Infinity."""
    (pair()
     .apply([{"task_id": "big", "n": 0, "status": "start"}], 100.0)
     .apply([{"task_id": "big", "n": 1.7e308}], 100.001)
     .apply([{"task_id": "big", "n": 1.7e308}], 100.002)
     .apply([{"task_id": "big", "n": 1.0}], 101.0)
     .apply([{"task_id": "big", "n": 1.79e308}], 101.0)
     .apply([{"task_id": "big", "n": 1.79e308}], 102.0)
     .run())


def test_eta_only_when_it_means_something(pair):
    (pair()
     .apply([{"task_id": "e", "n": 0, "total": 10, "status": "start"}], 10.0)
     .apply([{"task_id": "e", "n": 4}], 12.0)
     .apply([{"task_id": "e", "total": None}], 13.0)
     .apply([{"task_id": "e", "total": 4}], 14.0)
     .apply([{"task_id": "e", "total": 3, "n": 5}], 15.0)
     .apply([{"task_id": "e", "total": 100, "n": 5}], 16.0)
     .apply([{"task_id": "e", "n": 6, "status": "close"}], 17.0)
     .apply([{"task_id": "e", "n": 7, "status": "error"}], 18.0)
     .apply([{"task_id": "e", "n": 0, "status": "start"}], 19.0)
     .apply([{"task_id": "e", "n": 0}], 20.0)
     .sweep(60.0, stale_seconds=10)
     .apply([{"task_id": "e", "n": 1}], 61.0)
     .run())


def test_eta_that_overflows_is_null(pair):
    """A tiny rate and a huge remainder make the estimate infinite: JSON has no Infinity."""
    (pair()
     .apply([{"task_id": "slow", "n": 0, "total": 1e308, "status": "start"}], 10.0)
     .apply([{"task_id": "slow", "n": 1e-300}], 11.0)
     .apply([{"task_id": "slow", "n": 2e-300}], 12.0)
     .run())


def test_apply_restart_after_close_and_error_and_done_at(pair):
    (pair()
     .apply([{"task_id": "j", "n": 1, "total": 3, "status": "start"}], 10.0)
     .apply([{"task_id": "j", "n": 3, "status": "close"}], 12.0)
     .apply([{"task_id": "j", "status": "error"}], 13.0)
     .apply([{"task_id": "j", "n": 0, "status": "start"}], 20.0)
     .apply([{"task_id": "j", "n": 2}], 21.0)
     .apply([{"task_id": "j", "status": "error"}], 22.0)
     .apply([{"task_id": "j", "n": 1}], 23.0)
     .run())


def test_sweep_horizon_stale_retention_and_max_age(pair):
    (pair()
     .apply([{"task_id": "old", "status": "start"}, {"task_id": "done", "status": "close"}], 100.0)
     .apply([{"task_id": "new", "n": 1}], 150.0)
     .sweep(160.0, retention_seconds=100, stale_seconds=30, max_task_age=0)
     .sweep(161.0, retention_seconds=100, stale_seconds=30, max_task_age=0)
     .apply([{"task_id": "old", "n": 2}], 170.0)
     .sweep(205.0, retention_seconds=100, stale_seconds=30, max_task_age=0)
     .sweep(260.0, retention_seconds=100, stale_seconds=30, max_task_age=0)
     .sweep(300.0, retention_seconds=0, stale_seconds=0, max_task_age=120)
     .sweep(400.0, retention_seconds=0, stale_seconds=0, max_task_age=0)
     .run())


@pytest.mark.parametrize("policy", [
    {"stale_seconds": 10}, {"retention_seconds": 10}, {"max_task_age": 10},
    {"stale_seconds": 10, "retention_seconds": 20, "max_task_age": 30},
    {"stale_seconds": 30, "retention_seconds": 20, "max_task_age": 10},
])
def test_sweep_horizon_of_each_queue_at_its_limit(pair, policy):
    """Each queue's rules at their limits: a task idle exactly a limit is not touched by it."""
    steps = pair()
    for status in ("start", "update", "close", "error"):
        steps.apply([{"task_id": status, "status": status}], 100.0)
    steps.apply([{"task_id": "late", "n": 1}], 104.0).apply([{"task_id": "fresh"}], 109.0)
    steps.sweep(110.0, stale_seconds=5)  # start, update and late wait in the stale queue
    for now in (110.0, 110.5, 114.0, 114.5, 119.0, 120.0, 124.0, 130.0, 134.0, 134.5, 140.0):
        steps.sweep(now, **policy)
    steps.run()


def test_sweep_finished_tasks_kept_with_stale_on_are_not_in_the_way(pair):
    """Finished tasks idle past stale-seconds but inside retention: each sweep step still
    reaches the idle active task behind them, and they go once retention ends."""
    steps = pair()
    for i in range(6):
        steps.apply([{"task_id": f"done{i}", "status": "close" if i % 2 else "error"}], 100.0 + i)
    (steps
     .apply([{"task_id": "running", "n": 1}], 110.0)
     .apply([{"task_id": "fresh", "n": 1}], 150.0)
     .sweep(160.0, limit=1, retention_seconds=100, stale_seconds=30)
     .sweep(161.0, limit=1, retention_seconds=100, stale_seconds=30)
     .sweep(203.5, limit=2, retention_seconds=100, stale_seconds=30)
     .sweep(240.0, limit=2, retention_seconds=100, stale_seconds=30, max_task_age=125)
     .sweep(300.0, retention_seconds=100, stale_seconds=30)
     .run())


def test_sweep_in_steps_does_what_one_full_sweep_does(pair):
    steps = pair()
    statuses = ["start", "update", "close", "error"]
    for i in range(40):
        steps.apply([{"task_id": f"t{i}", "n": i, "status": statuses[i % 4]}], 1000.0 + i // 3)
    steps.apply([{"task_id": f"t{i}", "n": 99} for i in range(0, 40, 5)], 1020.0)
    for now, limit in ((1030.0, 1), (1031.0, 3), (1045.0, 7), (1060.0, 2), (1100.0, 5)):
        steps.sweep(now, limit=limit, retention_seconds=25, stale_seconds=12, max_task_age=70)
    steps.run()


def test_sweep_after_a_restart_on_a_keyspace_of_the_previous_layout(pair):
    """Tasks the previous release wrote (no sweep queues) are swept all the same."""
    steps = pair()
    for i in range(12):
        steps.apply([{"task_id": f"t{i}", "status": ["start", "close", "error"][i % 3]}], 10.0 + i)
    (steps
     .sweep(40.0, stale_seconds=25)
     .apply([{"task_id": "t0", "n": 5}], 41.0)
     .previous_layout()
     .apply([{"task_id": "t1", "n": 5}], 42.0)  # a write before the first sweep
     .sweep(45.0, limit=2, retention_seconds=30, stale_seconds=20)
     .previous_layout()
     .remove_where(60.0, statuses=["stale"], older_than=40.0)
     .sweep(100.0, limit=3, retention_seconds=30, stale_seconds=20, max_task_age=80)
     .run())


def test_sweep_with_a_daemon_of_the_previous_release_still_in_the_group(pair):
    """A daemon not yet upgraded writes tasks the queues do not hold, removes tasks it
    cannot take out of them, and marks tasks stale in place: the sweep still agrees."""
    steps = pair()
    for i in range(10):
        steps.apply([{"task_id": f"t{i}", "status": ["start", "close"][i % 2]}], 10.0 + i)
    (steps
     .sweep(30.0, stale_seconds=15)
     .previous_release("marked_stale", "t0")
     .previous_release("marked_stale", "t2")
     .apply([{"task_id": "new", "n": 1}], 31.0)
     .previous_release("wrote", "new")
     .apply([{"task_id": "t3", "status": "start"}], 32.0)
     .previous_release("wrote", "t3")
     .previous_release("removed", "t4")
     .previous_release("removed", "t1")
     .sweep(50.0, limit=1, retention_seconds=25, stale_seconds=15, max_task_age=38)
     .sweep(90.0, limit=2, retention_seconds=25, stale_seconds=15, max_task_age=50)
     .check_layout()
     .run())


def test_make_room_evicts_oldest_finished_else_capacity(pair):
    (pair(max_tasks=3)
     .apply([{"task_id": "f1", "status": "close"}], 1.0)
     .apply([{"task_id": "f2", "status": "error"}], 2.0)
     .apply([{"task_id": "a1", "status": "start"}], 3.0)
     .apply([{"task_id": "f1", "n": 1, "status": "close"}], 4.0)
     .apply([{"task_id": "a2"}], 5.0)
     .apply([{"task_id": "a3"}, {"task_id": "f1", "status": "update"}], 6.0)
     .apply([{"task_id": "x1"}, {"task_id": "x2"}], 7.0)
     .apply([{"task_id": "f1", "status": "close"}, {"task_id": "a2", "status": "close"}], 8.0)
     .apply([{"task_id": "y1"}, {"task_id": "y2"}], 9.0)
     .apply([{"task_id": "z1"}], 10.0)
     .run())


def test_apply_batches_repeating_a_task_and_deletions(pair):
    (pair()
     .apply([{"task_id": "b", "n": 1, "status": "start"}, {"task_id": "c", "status": "close"},
             {"task_id": "b", "n": 5}, {"task_id": "b", "status": "close"}], 50.0)
     .apply([{"task_id": "d", "status": "error"}, {"task_id": "e"}], 60.0)
     .remove("c")
     .remove("nope")
     .remove_where(70.0, statuses=["error"])
     .remove_where(70.0, older_than=15.0)
     .remove_where(70.0, statuses=["update", "close"], older_than=5.0)
     .remove_where(70.0)
     .run())


def test_apply_any_text_round_trips(pair):
    odd = ["naïve ✓ 🚀", "quote \" back \\ slash / tab", "\ud800 lone surrogate", "{not json}",
           "null", "1e5"]
    events = [{"task_id": text, "desc": text, "unit": text[:8], "meta": {text: [text, 1e300, -0.5]}}
              for text in odd]
    pair().apply(events, 5.0).apply([{"task_id": odd[0], "n": 2.5}], 6.0).remove(odd[1]).run()


SIXTEEN = {f"m{i}": float(i) for i in range(16)}
ODD_TEXT = ["naïve ✓ 🚀", "quote \" back \\ slash", "\ud800 lone surrogate", "k,ey:1=2", "\x01 \x00",
            "null", "1e5"]


def test_telemetry_metrics_merge_and_null_removes_a_key(pair):
    (pair()
     .apply([{"task_id": "m", "metrics": {"loss": 0.5, "acc": 1, "big": 10 ** 30}}], 1.0)
     .apply([{"task_id": "m", "metrics": {"loss": 0.25, "acc": None, "lr": 1e-7, "neg": -0.0}}], 2.0)
     .apply([{"task_id": "m", "n": 3}], 3.0)
     .apply([{"task_id": "m", "metrics": {}}], 4.0)
     .apply([{"task_id": "m", "metrics": {"acc": 2, "loss": None}},
             {"task_id": "m", "metrics": {"loss": 1.5e300}}], 5.0)
     .apply([{"task_id": "m", "metrics": dict.fromkeys(["loss", "lr", "neg", "acc", "big"])}], 6.0)
     .apply([{"task_id": "fresh", "metrics": {"gone": None}}], 7.0)
     .apply([{"task_id": "m", "metrics": {text: index for index, text in enumerate(ODD_TEXT)}}], 8.0)
     .run())


def test_telemetry_the_cap_refuses_the_batch_naming_the_event_all_or_none(pair):
    (pair(max_tasks=3)
     .apply([{"task_id": "done", "status": "close"}], 1.0)
     .apply([{"task_id": "m", "metrics": SIXTEEN}], 2.0)
     # Refused before room is made: the finished task is not evicted for the new one.
     .apply([{"task_id": "new", "log": ["x"]}, {"task_id": "m", "metrics": {"extra": 1}}], 3.0)
     .apply([{"task_id": "m", "metrics": {"m0": None, "extra": 2}}], 4.0)
     .apply([{"task_id": "x", "metrics": {"a": 1}, "postfix": "p"},
             {"task_id": "x", "metrics": {f"k{i}": i for i in range(16)}}], 5.0)
     .apply([{"task_id": "x", "metrics": {f"k{i}": i for i in range(17)}}], 6.0)
     .apply([{"task_id": "y", "metrics": dict.fromkeys(f"k{i}" for i in range(17))}], 7.0)
     .apply([{"task_id": "y", "metrics": {f"k{i}": i for i in range(16)}},
             {"task_id": "y", "metrics": {"k0": None, "k16": 16}}], 8.0)
     .run())


def test_telemetry_postfix_is_kept_until_an_event_changes_it(pair):
    (pair()
     .apply([{"task_id": "p", "postfix": "loss=0.5"}, {"task_id": "q", "n": 1}], 1.0)
     .apply([{"task_id": "p", "n": 2}, {"task_id": "q", "postfix": ODD_TEXT[1]}], 2.0)
     .apply([{"task_id": "p", "postfix": ""}], 3.0)
     .apply([{"task_id": "p", "postfix": ODD_TEXT[2] * 30}], 4.0)
     .run())


def test_telemetry_the_log_tail_keeps_the_last_hundred_lines(pair):
    lines = [f"line {i}" for i in range(300)]
    (pair()
     .apply([{"task_id": "l", "log": lines[:3]}], 1.0)
     .apply([{"task_id": "l", "log": lines[3:53]}, {"task_id": "l", "log": lines[53:60]},
             {"task_id": "other", "log": ODD_TEXT}], 2.0)
     .apply([{"task_id": "l", "log": lines[60:110]}], 3.0)
     .apply([{"task_id": "l", "log": lines[110:160]}, {"task_id": "l", "log": lines[160:210]},
             {"task_id": "l", "n": 2}, {"task_id": "l", "log": lines[210:260]}], 4.0)
     .apply([{"task_id": "l", "log": []}, {"task_id": "other", "n": 1}], 5.0)
     .apply([{"task_id": "l", "log": [""]}], 6.0)
     .apply([{"task_id": "l", "log": lines[260:300]}], 7.0)
     .apply([{"task_id": "quiet", "log": []}], 8.0)
     .run())


def test_telemetry_carries_on_across_a_restart_and_goes_with_its_task(pair):
    everything = {"metrics": {"loss": 1}, "postfix": "p", "log": ["a", "b"]}
    (pair(max_tasks=4)
     .apply([{"task_id": "r", "status": "start", **everything}], 1.0)
     .apply([{"task_id": "r", "status": "close"}], 2.0)
     .apply([{"task_id": "r", "status": "start", "log": ["c"]}], 3.0)
     .apply([{"task_id": "gone", **everything}, {"task_id": "swept", **everything},
             {"task_id": "evicted", "status": "close", **everything}], 4.0)
     .remove("gone")
     .apply([{"task_id": "gone"}], 5.0)
     .sweep(100.0, max_task_age=90)
     .apply([{"task_id": "a", **everything}, {"task_id": "b"}, {"task_id": "c"}], 101.0)
     .apply([{"task_id": "evicted"}], 102.0)
     .apply([{"task_id": "b", **everything}, {"task_id": "d", "log": ["d"]}], 103.0)
     .remove_where(200.0, older_than=98.0)
     .run())


def test_telemetry_stays_with_a_task_a_daemon_of_the_previous_release_wrote(pair):
    (pair()
     .apply([{"task_id": "t", "metrics": {"loss": 1}, "postfix": "p", "log": ["a"]}], 1.0)
     .previous_release("wrote", "t")
     .apply([{"task_id": "t", "n": 4}], 2.0)
     .previous_release("removed", "t")
     .apply([{"task_id": "t", "n": 1}], 3.0)
     .apply([{"task_id": "t", "log": ["new"]}], 4.0)
     .run())


def test_random_sequences_agree(pair):
    rng = random.Random(20261129)
    steps = pair(max_tasks=8)
    now = 1_700_000_000.0
    statuses = [None, "start", "update", "close", "error"]
    for _ in range(120):
        now += rng.choice([0.0, 0.001, 0.3, 1.0, 7.0, 40.0])
        roll = rng.random()
        if roll < 0.8:
            batch = []
            for _ in range(rng.randint(1, 4)):
                event = {"task_id": f"t{rng.randint(0, 11)}"}
                if rng.random() < 0.7:
                    event["n"] = rng.choice([0, 1, 2.5, 10, 55, 100, rng.uniform(0, 200)])
                if rng.random() < 0.3:
                    event["total"] = rng.choice([None, 100, 250.5])
                status = rng.choice(statuses)
                if status:
                    event["status"] = status
                if rng.random() < 0.3:
                    event["metrics"] = {f"m{rng.randint(0, 19)}": rng.choice([None, 1, 0.5, -2e9])
                                        for _ in range(rng.randint(0, 6))}
                if rng.random() < 0.2:
                    event["postfix"] = rng.choice(["", "p", "loss=0.1"])
                if rng.random() < 0.3:
                    event["log"] = [f"line {rng.random()}"] * rng.randint(0, 50)
                batch.append(event)
            steps.apply(batch, now)
        elif roll < 0.93:
            steps.sweep(now, retention_seconds=rng.choice([0, 30, 100]),
                        stale_seconds=rng.choice([0, 10, 50]), max_task_age=rng.choice([0, 200]))
        else:
            steps.remove(f"t{rng.randint(0, 11)}")
    steps.run()


def test_cleanup_lease_lets_one_owner_sweep_until_it_expires(redis_server, redis_prefix):
    async def scenario():
        store = RedisTaskStore(connect(redis_server.url, 5.0), redis_prefix)
        policy = SweepPolicy(stale_seconds=1)
        try:
            assert await store.sweep(10.0, policy, 0.3, "a") is not None
            assert await store.sweep(10.0, policy, 0.3, "b") is None, "b swept under a's lease"
            assert await store.sweep(11.0, policy, 0.3, "a") is not None, "a lost its own lease"
            await asyncio.sleep(0.5)
            assert await store.sweep(12.0, policy, 0.3, "b") is not None, "a dead lease stuck"
            assert await store.sweep(12.0, policy, 0.3, "a") is None
        finally:
            await store.close()

    asyncio.run(scenario())


def test_telemetry_of_an_imported_state_file_keeps_to_the_event_rules(redis_server, redis_prefix):
    """A state file's metrics, postfix and tail reach Redis as the state file's loader keeps
    them: what breaks the event rules is cut or dropped."""
    wires = [
        {"task_id": "t", "updated_at": 5.0, "metrics": {"ok": 1.5, "bad": "x", "k" * 65: 1},
         "postfix": "p" * 300, "log_tail": ["a", 7, "é" * 600] + [f"l{i}" for i in range(120)]},
        {"task_id": "plain", "updated_at": 6.0, "metrics": {}, "postfix": None},
    ]

    async def scenario():
        store = RedisTaskStore(connect(redis_server.url, 5.0), redis_prefix)
        try:
            await store.import_tasks(wires, 10.0)
            return await store.snapshot(), await store.log_tail("t"), await store.log_tail("plain")
        finally:
            await store.close()

    snapshot, tail, plain_tail = asyncio.run(scenario())
    assert snapshot["t"]["metrics"] == {"ok": 1.5} and snapshot["t"]["postfix"] == "p" * 256
    assert tail == [f"l{i}" for i in range(20, 120)] and snapshot["t"]["log_lines"] == 100
    assert snapshot["t"]["last_log"] == "l119"
    assert (snapshot["plain"]["metrics"], snapshot["plain"]["log_lines"], plain_tail) == (None, 0, [])
