"""The WebSocket hub with fake subscribers, a fake timer and a fake clock."""

import json
from concurrent.futures import Future

import pytest

from progressistad import contract
from progressistad.web import hub as hub_module
from progressistad.web.hub import FANOUT_SHARE, Hub, SendFailed
from progressistad.core.store import TaskStore

T0 = 1_700_000_000.0


class FakeSubscriber:
    def __init__(self, protocol=contract.WS_PROTOCOL_DELTA, slow=False):
        self.protocol = protocol
        self.slow = slow
        self.messages = []
        self.pending = []
        self.aborted = None
        self.gone = False

    def send(self, text):
        if self.gone:
            raise SendFailed()
        self.messages.append(json.loads(text))
        if self.slow:
            future = Future()
            self.pending.append(future)
            return future
        return None

    def drain(self):
        pending, self.pending = self.pending, []
        for future in pending:
            future.set_result(None)

    def abort(self, code, reason):
        self.aborted = code


class Rig:
    def __init__(self, interval=0.1, stall_timeout=30.0, heartbeat_interval=None, cpu_clock=None):
        self.store = TaskStore()
        self.now = 100.0
        self.timers = []
        self.hub = Hub(self.store, interval=interval, stall_timeout=stall_timeout,
                       clock=lambda: self.now, schedule=self.schedule,
                       heartbeat_interval=heartbeat_interval, cpu_clock=cpu_clock)

    def schedule(self, delay, callback):
        self.timers.append((self.now + delay, callback))

    def advance(self, seconds):
        self.now += seconds
        due = [t for t in self.timers if t[0] <= self.now]
        self.timers = [t for t in self.timers if t[0] > self.now]
        for _, callback in due:
            callback()

    def run_for(self, seconds, step=0.05):
        """Advance in small steps, so that timers a callback sets again run too."""
        for _ in range(round(seconds / step)):
            self.advance(step)

    def publish(self, changes):
        """As the task service announces a change: the store hears of it, then the hub."""
        self.store.note(changes)
        self.hub.publish(changes)

    def event(self, **event):
        self.publish(self.store.apply([event], T0))


@pytest.fixture
def rig():
    return Rig()


def test_subscriber_gets_snapshot_on_connect(rig):
    rig.store.apply([{"task_id": "a", "n": 1}], T0)
    delta, plain = FakeSubscriber(), FakeSubscriber(contract.WS_PROTOCOL_SNAPSHOT)
    rig.hub.subscribe(delta)
    rig.hub.subscribe(plain)
    assert delta.messages == [{"type": "snapshot", "seq": 0, "tasks": {"a": rig.store.get("a").to_wire()}}]
    assert plain.messages == [{"tasks": {"a": rig.store.get("a").to_wire()}}]


def test_changes_are_coalesced_into_one_message_per_interval(rig):
    sub = FakeSubscriber()
    rig.hub.subscribe(sub)
    rig.event(task_id="a", n=1)
    rig.advance(0)
    assert sub.messages[-1]["type"] == "delta" and sub.messages[-1]["seq"] == 1
    for n in range(2, 300):
        rig.event(task_id="a", n=n)
    rig.advance(0.05)
    assert len(sub.messages) == 2
    rig.advance(0.06)
    assert len(sub.messages) == 3
    last = sub.messages[-1]
    assert last == {"type": "delta", "seq": 2, "tasks": {"a": rig.store.get("a").to_wire()}, "removed": []}
    assert last["tasks"]["a"]["n"] == 299


def test_removals_travel_in_deltas_and_upsert_then_remove_is_a_removal(rig):
    sub = FakeSubscriber()
    rig.hub.subscribe(sub)
    rig.event(task_id="a")
    rig.publish(rig.store.remove("a"))
    rig.advance(0)
    assert sub.messages[-1]["tasks"] == {} and sub.messages[-1]["removed"] == ["a"]


def test_snapshot_protocol_gets_the_whole_state_each_time(rig):
    sub = FakeSubscriber(contract.WS_PROTOCOL_SNAPSHOT)
    rig.event(task_id="a")
    rig.hub.subscribe(sub)
    rig.event(task_id="b")
    rig.advance(1)
    assert set(sub.messages[-1]["tasks"]) == {"a", "b"} and "type" not in sub.messages[-1]


class CostlySubscriber(FakeSubscriber):
    """A watcher (the guide's protocol unless told) each message to which costs the loop `cost`
    CPU seconds."""

    def __init__(self, cpu, cost, protocol=contract.WS_PROTOCOL_SNAPSHOT):
        super().__init__(protocol)
        self.cpu, self.cost = cpu, cost

    def send(self, text):
        self.cpu[0] += self.cost
        return super().send(text)


def test_snapshot_rounds_take_at_most_their_share_and_the_last_state_still_arrives():
    cpu = [0.0]
    rig = Rig(interval=0.1, cpu_clock=lambda: cpu[0])
    watchers = [CostlySubscriber(cpu, 0.01) for _ in range(10)]  # a round costs 0.1 s
    delta = FakeSubscriber()
    for watcher in watchers + [delta]:
        rig.hub.subscribe(watcher)
    for n in range(1, 21):  # an event every 0.1 s for 2 s
        rig.event(task_id="a", n=n)
        rig.run_for(0.1)
    rig.run_for(1.0)
    rounds = len(watchers[0].messages) - 1  # the first came on connect
    spent = cpu[0] - 0.1  # the snapshots on connect
    assert spent <= FANOUT_SHARE * 3.0 + 0.1 + 1e-9  # a quarter of the 3 s, plus one round
    assert 4 <= rounds <= 7  # one round per 0.4 s at most, where the cost alone allows 20
    assert all(w.messages[-1]["tasks"]["a"]["n"] == 20 for w in watchers)
    assert len(delta.messages) == 21  # deltas keep the broadcast interval


def test_a_flush_over_its_share_puts_the_next_off_and_the_last_state_still_arrives():
    cpu = [0.0]
    rig = Rig(interval=0.1, cpu_clock=lambda: cpu[0])
    watcher = CostlySubscriber(cpu, 0.05, contract.WS_PROTOCOL_DELTA)
    rig.hub.subscribe(watcher)
    for n in range(1, 41):  # an event every 0.05 s for 2 s
        rig.event(task_id="a", n=n)
        rig.run_for(0.05)
    rig.run_for(1.0)
    deltas = watcher.messages[1:]
    assert 9 <= len(deltas) <= 11  # one per 0.05 / FANOUT_SHARE = 0.2 s, where the interval allows 20
    assert rig.hub.stats.flush_period == pytest.approx(0.05 / FANOUT_SHARE)
    assert deltas[-1]["tasks"]["a"]["n"] == 40
    assert [m["seq"] for m in deltas] == list(range(1, len(deltas) + 1))


def test_snapshot_rounds_are_bounded_in_bytes_per_second(rig, monkeypatch):
    monkeypatch.setattr(hub_module, "SNAPSHOT_BYTES_PER_SECOND", 1000)
    watchers = [FakeSubscriber(contract.WS_PROTOCOL_SNAPSHOT) for _ in range(2)]
    for watcher in watchers:
        rig.hub.subscribe(watcher)
    rig.event(task_id="a", n=0)
    rig.run_for(0.1)
    size = len(json.dumps(watchers[0].messages[-1], separators=(",", ":")))
    period = 2 * size / 1000  # seconds a round of two snapshots may take of the budget
    for n in range(1, 41):
        rig.event(task_id="a", n=n)
        rig.run_for(period / 10)
    rounds = len(watchers[0].messages) - 2  # after the one on connect and the first round
    assert 3 <= rounds <= 5  # one per period, where the interval allows 40
    rig.run_for(period)
    assert all(w.messages[-1]["tasks"]["a"]["n"] == 40 for w in watchers)


def test_cheap_snapshot_rounds_keep_the_broadcast_interval(rig):
    plain = FakeSubscriber(contract.WS_PROTOCOL_SNAPSHOT)
    rig.hub.subscribe(plain)
    for n in range(1, 6):
        rig.event(task_id="a", n=n)
        rig.run_for(0.1)
    assert [m["tasks"]["a"]["n"] for m in plain.messages[1:]] == [1, 2, 3, 4, 5]


def test_seq_is_contiguous_for_a_keeping_up_watcher(rig):
    sub = FakeSubscriber()
    rig.hub.subscribe(sub)
    for n in range(5):
        rig.event(task_id="a", n=n)
        rig.advance(0.2)
    seqs = [m["seq"] for m in sub.messages]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))


def test_busy_watcher_is_skipped_then_resynced_with_a_snapshot(rig):
    slow, fast = FakeSubscriber(slow=True), FakeSubscriber()
    rig.hub.subscribe(slow)
    rig.hub.subscribe(fast)
    for n in range(10):
        rig.event(task_id="a", n=n)
        rig.advance(0.2)
    assert len(slow.messages) == 1 and len(fast.messages) == 11
    assert rig.hub.stats.skipped_busy == 10
    slow.drain()
    assert slow.messages[-1]["type"] == "snapshot"
    assert slow.messages[-1]["tasks"]["a"]["n"] == 9
    assert slow.messages[-1]["seq"] == rig.hub.seq


def test_stalled_watcher_is_closed_after_the_timeout(rig):
    slow = FakeSubscriber(slow=True)
    rig.hub.subscribe(slow)
    rig.advance(29)
    rig.hub.reap()
    assert slow.aborted is None
    rig.advance(2)
    rig.hub.reap()
    assert slow.aborted == contract.WS_CLOSE_STALLED and len(rig.hub) == 0


def test_failed_send_drops_the_subscriber(rig):
    sub = FakeSubscriber()
    rig.hub.subscribe(sub)
    sub.gone = True
    rig.event(task_id="a")
    rig.advance(0)
    assert len(rig.hub) == 0


def test_write_that_fails_later_drops_the_subscriber(rig):
    slow = FakeSubscriber(slow=True)
    rig.hub.subscribe(slow)
    slow.pending.pop().set_exception(OSError("reset"))
    assert len(rig.hub) == 0


def test_snapshot_is_serialized_once_per_change(rig, monkeypatch):
    rig.event(task_id="a")
    calls = []
    original = rig.store.tasks_message
    monkeypatch.setattr(rig.store, "tasks_message",
                        lambda head, tail: calls.append(1) or original(head, tail))
    for _ in range(50):
        rig.hub.subscribe(FakeSubscriber())
    assert len(calls) == 1


def test_close_all_aborts_everyone(rig):
    subs = [FakeSubscriber() for _ in range(3)]
    for sub in subs:
        rig.hub.subscribe(sub)
    rig.hub.close_all(contract.WS_CLOSE_GOING_AWAY, "bye")
    assert [s.aborted for s in subs] == [1001] * 3 and len(rig.hub) == 0


def test_no_message_without_changes(rig):
    sub = FakeSubscriber()
    rig.hub.subscribe(sub)
    rig.publish(rig.store.remove("missing"))
    rig.advance(1)
    assert len(sub.messages) == 1


# ---- heartbeats


def heartbeats(sub):
    return [m for m in sub.messages if m.get("type") == contract.WS_MESSAGE_HEARTBEAT]


def test_a_silent_delta_watcher_gets_a_heartbeat_with_the_last_seq():
    rig = Rig(heartbeat_interval=5.0)
    sub = FakeSubscriber()
    rig.hub.subscribe(sub)
    rig.event(task_id="a")
    rig.advance(0)
    assert sub.messages[-1] == {**sub.messages[-1], "type": "delta", "seq": 1}
    rig.run_for(4.9)
    assert heartbeats(sub) == []
    rig.run_for(2.6)
    assert heartbeats(sub) == [{"type": "heartbeat", "seq": 1}]
    assert rig.hub.seq == 1, "a heartbeat does not move seq"
    rig.run_for(10.0)
    assert heartbeats(sub) == [{"type": "heartbeat", "seq": 1}] * 3
    assert rig.hub.stats.heartbeats == 3


def test_no_heartbeat_while_deltas_flow_and_none_for_the_snapshot_protocol():
    rig = Rig(heartbeat_interval=5.0)
    delta, plain = FakeSubscriber(), FakeSubscriber(contract.WS_PROTOCOL_SNAPSHOT)
    rig.hub.subscribe(delta)
    rig.hub.subscribe(plain)
    for n in range(40):
        rig.event(task_id="a", n=n)
        rig.run_for(1.0)
    assert heartbeats(delta) == [] and len(delta.messages) == 41
    rig.run_for(20.0)
    assert len(heartbeats(delta)) >= 2 and {m["seq"] for m in heartbeats(delta)} == {40}
    assert all("type" not in m for m in plain.messages) and len(plain.messages) == 41


def test_one_timer_for_every_watcher_and_none_without_delta_watchers():
    rig = Rig(heartbeat_interval=5.0)
    rig.hub.subscribe(FakeSubscriber(contract.WS_PROTOCOL_SNAPSHOT))
    assert rig.timers == []
    subs = [FakeSubscriber() for _ in range(100)]
    for sub in subs:
        rig.hub.subscribe(sub)
    assert len(rig.timers) == 1
    rig.run_for(6.0)
    assert len(rig.timers) == 1 and all(len(heartbeats(sub)) == 1 for sub in subs)
    for sub in subs:
        rig.hub.unsubscribe(sub)
    rig.run_for(6.0)
    assert rig.timers == [], "the timer stops with the last delta watcher"
    rig.hub.subscribe(FakeSubscriber())
    assert len(rig.timers) == 1


def test_a_busy_watcher_gets_no_heartbeat_and_no_interval_sends_none():
    rig = Rig(heartbeat_interval=5.0)
    slow = FakeSubscriber(slow=True)
    rig.hub.subscribe(slow)
    rig.run_for(12.0)
    assert heartbeats(slow) == []
    quiet = Rig()
    sub = FakeSubscriber()
    quiet.hub.subscribe(sub)
    quiet.run_for(30.0)
    assert sub.messages == [sub.messages[0]] and quiet.timers == []
