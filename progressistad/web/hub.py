"""The WebSocket hub: who is watching, coalesced broadcasts, backpressure.

Changes are collected and flushed at most once per broadcast interval; each
flush serializes the snapshot and the delta once, whatever the number of
watchers, from the tasks' cached entries. A watcher whose previous message has
not been written out is skipped, then resynced with a fresh snapshot once it
drains; one stalled longer than the stall timeout is closed. Fan-out takes at
most `FANOUT_SHARE` of the loop's CPU time: a flush that cost more than that
share of the broadcast interval puts the next one off, and snapshot-protocol
watchers are sent snapshots in rounds of their own, so paced and bounded in
bytes per second. As the state grows, watchers hear less often, and ingest
keeps the rest. Delta-protocol watchers that got nothing for a heartbeat period
get a heartbeat, from one timer for all. The hub knows nothing of Tornado:
subscribers, the clock and the timer are passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, Optional, Protocol, Set

from progressistad import contract
from progressistad.core.store import Changes
from progressistad.core.wirejson import dumps, tasks_object

FANOUT_SHARE = 0.25
"""Most of the loop's CPU time that flushes, and apart from them rounds of snapshots to
snapshot-protocol watchers, may each take: one that cost C seconds of CPU is followed by the
next no sooner than C / FANOUT_SHARE (nor sooner than the broadcast interval).

Only the part of a write done before `send` returns is measured; what the stream writes once
the socket drains is not, which is why rounds of snapshots are bounded in bytes too."""

SNAPSHOT_BYTES_PER_SECOND = 64 * 2**20
"""Most bytes per second that rounds of snapshots send to snapshot-protocol watchers in all:
a round of B bytes is followed by the next no sooner than B / SNAPSHOT_BYTES_PER_SECOND."""


class SendFailed(Exception):
    """The subscriber is gone; the hub drops it."""


class Subscriber(Protocol):
    """One WebSocket connection as the hub sees it."""

    protocol: str

    def send(self, message: bytes) -> Any:
        """Queue one UTF-8 JSON text message; return None or a future that completes once it is
        written out."""

    def abort(self, code: int, reason: str) -> None:
        """Close the connection now, without waiting for the peer."""


class TaskSource(Protocol):
    def tasks_message(self, head: bytes, tail: bytes) -> bytes:
        """`head`, every task as one JSON "tasks" object, `tail`."""

    def get(self, task_id: str) -> Any:
        """The task of `task_id` (with its `entry()`, `wirejson.entry` of its served form), or None."""


@dataclass
class HubStats:
    flushes: int = 0
    flush_seconds: float = 0.0
    messages_sent: int = 0
    skipped_busy: int = 0
    closed_stalled: int = 0
    heartbeats: int = 0
    snapshot_rounds: int = 0
    snapshot_round_seconds: float = 0.0
    flush_period: float = 0.0
    """Seconds from the last flush to the earliest next: the broadcast interval, or longer when
    fan-out is over its share."""


class _Watcher:
    __slots__ = ("subscriber", "busy_since", "needs_snapshot", "last_sent")

    def __init__(self, subscriber: Subscriber) -> None:
        self.subscriber = subscriber
        self.busy_since: Optional[float] = None
        self.needs_snapshot = False
        self.last_sent = float("-inf")

    @property
    def delta(self) -> bool:
        """On the delta protocol: deltas and heartbeats; otherwise a snapshot per message, in
        rounds of their own."""
        return self.subscriber.protocol == contract.WS_PROTOCOL_DELTA


class Hub:
    """Fans task changes out to every subscriber, coalesced and bounded."""

    def __init__(
        self,
        source: TaskSource,
        *,
        interval: float,
        stall_timeout: float,
        clock: Callable[[], float],
        schedule: Callable[[float, Callable[[], None]], Any],
        perf_clock: Optional[Callable[[], float]] = None,
        cpu_clock: Optional[Callable[[], float]] = None,
        sample: Optional[Callable[[Set[str]], Any]] = None,
        heartbeat_interval: Optional[float] = None,
    ) -> None:
        self._source = source
        self._sample = sample
        """Called once per flush with the ids of the tasks changed since the last: the series
        behind the dashboards' sparklines take one point per flush, whoever is watching."""
        self.interval = interval
        self.stall_timeout = stall_timeout
        self.heartbeat_interval = heartbeat_interval
        """Seconds of silence after which a delta watcher gets a heartbeat; None sends none."""
        self._heartbeat_armed = False
        self._clock = clock
        self._perf_clock = perf_clock or clock
        self._cpu_clock = cpu_clock or self._perf_clock
        """The loop thread's CPU time: what a round of snapshots is charged."""
        self._snapshot_round_due = float("-inf")
        self._snapshot_round_scheduled = False
        self._schedule = schedule
        self._watchers: Dict[Subscriber, _Watcher] = {}
        self._pending = Changes()
        self._flush_scheduled = False
        self._next_flush = float("-inf")
        self._resync_cpu = 0.0
        """CPU time of snapshots sent to resync delta watchers since the last flush: charged to it."""
        self._seq = 0
        self._snapshot_cache: Dict[str, bytes] = {}
        """Snapshot messages by protocol, for the current state and seq: built once, sent to many."""
        self.stats = HubStats()

    def __len__(self) -> int:
        return len(self._watchers)

    @property
    def seq(self) -> int:
        return self._seq

    def subscribe(self, subscriber: Subscriber) -> None:
        watcher = _Watcher(subscriber)
        self._watchers[subscriber] = watcher
        self._send_snapshot(watcher)
        if watcher.delta:
            self._arm_heartbeat()

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._watchers.pop(subscriber, None)

    def publish(self, changes: Changes) -> None:
        """Record `changes`; they go out with the next flush."""
        if not changes:
            return
        self._pending.merge(changes)
        self._snapshot_cache.clear()
        if not self._flush_scheduled:
            self._flush_scheduled = True
            delay = max(0.0, self._next_flush - self._clock())
            self._schedule(delay, self.flush)

    def flush(self) -> None:
        """Send what changed since the last flush to every watcher that can take it."""
        self._flush_scheduled = False
        started, started_cpu, now = self._perf_clock(), self._cpu_clock(), self._clock()
        in_rounds = self.stats.snapshot_round_seconds
        changes, self._pending = self._pending, Changes()
        if not changes:
            self._next_flush = now + self.interval
            return
        self._take_samples(changes)
        self._seq += 1
        self._snapshot_cache.clear()
        if self._watchers:
            self._broadcast(changes)
        self.stats.flushes += 1
        self.stats.flush_seconds += self._perf_clock() - started
        # Rounds of snapshots started by this flush keep their own pace.
        in_rounds = self.stats.snapshot_round_seconds - in_rounds
        cost = self._cpu_clock() - started_cpu - in_rounds + self._resync_cpu
        self._resync_cpu = 0.0
        self._next_flush = self._paced(now, cost)
        self.stats.flush_period = self._next_flush - now

    def _take_samples(self, changes: Changes) -> None:
        """Series points for the changed tasks; a delta carries only their served fields.

        What the sampling trims (telemetry beyond its budget) comes back through `publish`
        and goes out with the next flush.
        """
        if self._sample is not None and changes.upserted:
            self._sample(changes.upserted)

    def reap(self) -> None:
        """Close watchers whose last message has been stuck longer than the stall timeout."""
        now = self._clock()
        for watcher in list(self._watchers.values()):
            if watcher.busy_since is not None and now - watcher.busy_since > self.stall_timeout:
                self._drop(watcher)
                self.stats.closed_stalled += 1
                watcher.subscriber.abort(contract.WS_CLOSE_STALLED, "too slow to read updates")

    def heartbeat(self) -> None:
        """Send `{"type": "heartbeat", "seq": S}` to each delta watcher silent for a period."""
        self._heartbeat_armed = False
        if self.heartbeat_interval is None:
            return
        now = self._clock()
        message: Optional[bytes] = None
        listening = False
        for watcher in list(self._watchers.values()):
            if not watcher.delta:
                continue
            listening = True
            if watcher.busy_since is not None or watcher.needs_snapshot \
                    or now - watcher.last_sent < self.heartbeat_interval:
                continue
            if message is None:
                # Every watcher in step has been sent the current seq, by a delta or its snapshot.
                message = dumps({"type": contract.WS_MESSAGE_HEARTBEAT, "seq": self._seq}).encode()
            self._send(watcher, message)
            self.stats.heartbeats += 1
        if listening:
            self._arm_heartbeat()

    def _arm_heartbeat(self) -> None:
        """One timer for every watcher, ticking at half the period while a delta watcher is here.

        At half the period a silent watcher waits between one and one and a half periods.
        """
        if self._heartbeat_armed or self.heartbeat_interval is None:
            return
        self._heartbeat_armed = True
        self._schedule(self.heartbeat_interval / 2, self.heartbeat)

    def close_all(self, code: int, reason: str) -> None:
        for watcher in list(self._watchers.values()):
            self._drop(watcher)
            watcher.subscriber.abort(code, reason)

    def _broadcast(self, changes: Changes) -> None:
        delta: Optional[bytes] = None
        snapshot_round = False
        for watcher in list(self._watchers.values()):
            if watcher.busy_since is not None:
                watcher.needs_snapshot = True
                self.stats.skipped_busy += 1
                continue
            if not watcher.delta:
                watcher.needs_snapshot = snapshot_round = True
                continue
            if watcher.needs_snapshot:
                self._send_snapshot(watcher)
                continue
            if delta is None:
                delta = self._delta_message(changes)
            self._send(watcher, delta)
        if snapshot_round:
            self._snapshot_round()
        self.reap()

    def _snapshot_round(self) -> None:
        """Snapshots to the snapshot-protocol watchers waiting for one, now or once due."""
        wait = self._snapshot_round_due - self._clock()
        if wait > 0:
            if not self._snapshot_round_scheduled:
                self._snapshot_round_scheduled = True
                self._schedule(wait, self._scheduled_snapshot_round)
            return
        started, sent = self._cpu_clock(), 0
        for watcher in list(self._watchers.values()):
            if watcher.needs_snapshot and watcher.busy_since is None and not watcher.delta:
                sent += len(self._send_snapshot(watcher))
        cost = self._cpu_clock() - started
        self.stats.snapshot_rounds += 1
        self.stats.snapshot_round_seconds += cost
        self._snapshot_round_due = self._paced(self._clock(), cost, sent)

    def _paced(self, now: float, cost: float, sent: int = 0) -> float:
        """The earliest time for the next flush, or round of snapshots, after one at `now` that
        cost `cost` seconds of CPU and sent `sent` bytes of snapshots."""
        return now + max(self.interval, cost / FANOUT_SHARE, sent / SNAPSHOT_BYTES_PER_SECOND)

    def _scheduled_snapshot_round(self) -> None:
        self._snapshot_round_scheduled = False
        self._snapshot_round()

    def _delta_message(self, changes: Changes) -> bytes:
        tasks = tasks_object(task.entry() for task in map(self._source.get, changes.upserted)
                             if task is not None)
        head = dumps({"type": contract.WS_MESSAGE_DELTA, "seq": self._seq,
                      "removed": sorted(changes.removed)})
        return ('%s,"tasks":%s}' % (head[:-1], tasks)).encode()

    def _snapshot_message(self, protocol: str) -> bytes:
        message = self._snapshot_cache.get(protocol)
        if message is None:
            if protocol == contract.WS_PROTOCOL_DELTA:
                head = '{"type":"%s","seq":%d,"tasks":' % (contract.WS_MESSAGE_SNAPSHOT, self._seq)
            else:
                head = '{"tasks":'
            message = self._snapshot_cache[protocol] = self._source.tasks_message(head.encode(), b"}")
        return message

    def _send_snapshot(self, watcher: _Watcher) -> bytes:
        """Send `watcher` the snapshot of its protocol; returns the message."""
        watcher.needs_snapshot = False
        message = self._snapshot_message(watcher.subscriber.protocol)
        self._send(watcher, message)
        return message

    def _send(self, watcher: _Watcher, message: bytes) -> None:
        try:
            written = watcher.subscriber.send(message)
        except SendFailed:
            self._drop(watcher)
            return
        self.stats.messages_sent += 1
        watcher.last_sent = self._clock()
        if written is None or written.done():
            if _consume(written) is not None:
                self._drop(watcher)
            return
        watcher.busy_since = self._clock()
        written.add_done_callback(lambda future: self._drained(watcher, future))

    def _drained(self, watcher: _Watcher, written: Any) -> None:
        watcher.busy_since = None
        if _consume(written) is not None:
            self._drop(watcher)
        elif watcher.needs_snapshot and watcher.subscriber in self._watchers:
            if watcher.delta:
                started = self._cpu_clock()
                self._send_snapshot(watcher)
                self._resync_cpu += self._cpu_clock() - started
            else:
                self._snapshot_round()

    def _drop(self, watcher: _Watcher) -> None:
        self._watchers.pop(watcher.subscriber, None)

    def subscribers(self) -> Iterable[Subscriber]:
        return list(self._watchers)


def _consume(future: Any) -> Optional[BaseException]:
    """The exception a finished write ended with (retrieved, so nothing logs it), or None."""
    if future is None or future.cancelled():
        return None
    return future.exception()

