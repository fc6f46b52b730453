"""The hub takes one series sample per broadcast flush, of the tasks that flush carries, and what
the sample trims goes out like any change (fake timer, fake clocks, no sockets)."""

import asyncio
import json

from progressistad import contract
from progressistad.core.store import SweepPolicy, TaskStore
from progressistad.service import TaskService
from progressistad.web.hub import Hub

T0 = 1_700_000_000.0


class Watcher:
    protocol = contract.WS_PROTOCOL_DELTA

    def __init__(self):
        self.messages = []

    def send(self, text):
        self.messages.append(json.loads(text))

    def abort(self, code, reason):
        pass


class Rig:
    """A service and a hub wired as the daemon wires them, on timers the test runs."""

    def __init__(self, budget=TaskStore().telemetry_budget_bytes):
        self.now = T0
        self.timers = []
        self.service = TaskService(TaskStore(telemetry_budget_bytes=budget), lambda: self.now,
                                   SweepPolicy())
        self.hub = Hub(self.service.store, interval=0.1, stall_timeout=30.0, clock=lambda: self.now,
                       schedule=lambda delay, callback: self.timers.append(callback),
                       sample=self.service.sample)
        self.service.add_listener(self.hub.publish)

    def ingest(self, *events):
        asyncio.run(self.service.ingest(list(events)))

    def flush(self):
        self.now += 1
        timers, self.timers = self.timers, []
        for callback in timers:
            callback()

    def points(self, task_id):
        return self.service.store.get(task_id).series_wire()["n"]


def test_each_flush_samples_the_tasks_it_carries_once_whatever_their_events():
    rig = Rig()
    rig.ingest({"task_id": "a", "n": 1}, {"task_id": "b", "n": 1})
    rig.ingest({"task_id": "a", "n": 2})
    rig.flush()
    rig.ingest({"task_id": "a", "n": 3})
    rig.flush()
    assert rig.points("a") == [2, 3] and rig.points("b") == [1]


def test_a_flush_samples_with_or_without_watchers_and_not_the_removed():
    rig = Rig()
    watcher = Watcher()
    rig.hub.subscribe(watcher)
    rig.ingest({"task_id": "a", "n": 1}, {"task_id": "gone"})
    rig.flush()
    asyncio.run(rig.service.remove("gone"))
    rig.flush()
    rig.hub.unsubscribe(watcher)
    rig.ingest({"task_id": "a", "n": 4})
    rig.flush()
    assert rig.points("a") == [1, 4] and rig.service.store.get("gone") is None
    assert [message["type"] for message in watcher.messages] == ["snapshot", "delta", "delta"]


def test_tails_trimmed_by_a_sample_go_out_with_the_next_flush():
    rig = Rig()
    rig.ingest({"task_id": "old", "log": ["x" * 500] * 50}, {"task_id": "new", "log": ["line"]})
    rig.flush()
    watcher = Watcher()
    rig.hub.subscribe(watcher)
    rig.service.store.telemetry_budget_bytes = rig.service.store.telemetry_bytes // 2
    rig.ingest({"task_id": "new", "n": 1})
    rig.flush()
    rig.flush()
    deltas = [message for message in watcher.messages if message["type"] == "delta"]
    assert deltas[-1]["tasks"]["old"]["log_lines"] == 0
    assert rig.service.store.get("new").log_lines == 1
