"""Delivery off the request path: attempts, backoff and retries, the log and the counters.

One attempt at a time per route (a receiver that hangs holds back only its
own route), a few routes at once. Timeouts, connection errors, 5xx and 429
are retried with exponential backoff (honouring Retry-After) until the retry
horizon; other answers, redirects included, end the message at once. A
message that finally fails is logged in one line that names its route by the
route's safe URL.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, NamedTuple, Optional, Set, Tuple

from progressistad.alerts.messages import Message
from progressistad.alerts.queue import (
    DROPPED, FAILED, SENT, DeliveryLog, Entry, MemoryLog, MemoryQueue, MessageQueue, Record,
)
from progressistad.alerts.routes import Route
from progressistad.alerts.sinks import TIMEOUT, SendFailed, Sink

log = logging.getLogger("progressistad.alerts")

LATENCY_BOUNDS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 3600.0)
"""Upper bounds (seconds) of the delivery latency histogram's buckets."""
MAX_IN_FLIGHT = 8
"""Routes being sent to at once."""
POLL_SECONDS = 1.0
"""Longest wait before looking at the queue again (a shared queue fills from elsewhere)."""
DROP_LOG_SECONDS = 60.0
"""At most one log line per this many seconds about messages dropped from a full queue."""
STOP_TIMEOUT = 2.0
"""Seconds `close` waits for delivery to end after cancelling it."""


@dataclass(frozen=True)
class RetryPolicy:
    """When to try again: backoff from `first` doubling up to `most`, for `give_up_after`."""

    first: float = 1.0
    most: float = 60.0
    give_up_after: float = 3600.0
    timeout: float = TIMEOUT

    def delay(self, failures: int, retry_after: Optional[float] = None) -> float:
        backoff = min(self.most, self.first * 2 ** max(0, failures - 1))
        return max(backoff, retry_after or 0.0)


class Target(NamedTuple):
    route: Route
    sink: Sink


@dataclass
class Histogram:
    """Observations by bucket (`counts[i]` at most `bounds[i]`, the last one beyond)."""

    bounds: Tuple[float, ...] = LATENCY_BOUNDS
    counts: List[int] = field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS) + 1))
    total: float = 0.0
    count: int = 0

    def observe(self, value: float) -> None:
        index = next((i for i, bound in enumerate(self.bounds) if value <= bound), len(self.bounds))
        self.counts[index] += 1
        self.total += value
        self.count += 1

    def cumulative(self) -> List[Tuple[float, int]]:
        """`(le, count)` pairs as Prometheus buckets list them, +Inf last."""
        running, pairs = 0, []
        for bound, count in zip(self.bounds + (float("inf"),), self.counts):
            running += count
            pairs.append((bound, running))
        return pairs


@dataclass
class DeliveryStats:
    """Plain numbers for /metrics: messages by (route, result), attempts by route, latency."""

    messages: Counter = field(default_factory=Counter)
    attempts: Counter = field(default_factory=Counter)
    latency: Histogram = field(default_factory=Histogram)


class Delivery:
    """Takes messages from the queue and sends each through its route's sink."""

    def __init__(self, targets: Mapping[str, Target], clock: Callable[[], float],
                 queue: Optional[MessageQueue] = None, journal: Optional[DeliveryLog] = None,
                 policy: RetryPolicy = RetryPolicy(), max_in_flight: int = MAX_IN_FLIGHT,
                 poll_seconds: float = POLL_SECONDS) -> None:
        self.targets = dict(targets)
        self.queue = queue if queue is not None else MemoryQueue()
        self.journal = journal if journal is not None else MemoryLog()
        self.policy = policy
        self.stats = DeliveryStats()
        self.last_result: Dict[str, Tuple[str, Optional[str]]] = {}
        """Per route, how its last finished message ended and why."""
        self._clock = clock
        self._max_in_flight = max_in_flight
        self._poll = poll_seconds
        self._busy: Set[str] = set()
        self._tasks: Set["asyncio.Future[None]"] = set()
        self._waiters: Dict[str, "asyncio.Future[Record]"] = {}
        self._wake: Optional[asyncio.Event] = None
        self._runner: Optional["asyncio.Future[None]"] = None
        self._stopping = False
        self._dropped_unlogged = 0
        self._drop_logged_at: Optional[float] = None
        self.queue_error: Optional[str] = None
        """Why the queue or the log (a shared store) cannot be used right now, or None."""

    def start(self) -> None:
        """Begin sending, on the running loop."""
        self._wake = asyncio.Event()
        self._runner = asyncio.ensure_future(self._run())

    async def close(self) -> None:
        """Stop sending; what is still queued stays in the queue (a shared one keeps it)."""
        # Flagged as well as cancelled: redis-py 4.3 swallows a cancel that lands in a read.
        self._stopping = True
        running = [task for task in [self._runner, *self._tasks] if task is not None]
        for task in running:
            task.cancel()
        if running:
            await asyncio.wait(running, timeout=STOP_TIMEOUT)
        if any(not task.done() for task in running):
            log.warning("notification delivery did not stop within %.0f s; leaving it",
                        STOP_TIMEOUT)
        self._runner = None

    async def submit(self, message: Message, once: bool = False) -> None:
        """Queue `message` for delivery (`once`: a single attempt, for a test); never raises."""
        now = self._clock()
        try:
            dropped = await self.queue.push(Entry(message, queued_at=now, once=once))
            for entry in dropped:
                entry.error = "dropped: the notification queue was full"
                await self._finish(entry, DROPPED, now)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a shared queue that cannot be reached: the message is lost
            self._store_failed(exc)
            self.stats.messages[(message.route, DROPPED)] += 1
            dropped = [Entry(message, queued_at=now)]
        else:
            self._store_ok()
        self._note_dropped(len(dropped), now)
        self._poke()

    def expect(self, message_id: str) -> "asyncio.Future[Record]":
        """A future of the record of a message about to be submitted, set once it is finished."""
        return self._waiters.setdefault(message_id, asyncio.get_running_loop().create_future())

    def forget(self, message_id: str) -> None:
        """Stop expecting a message's record."""
        self._waiters.pop(message_id, None)

    async def _run(self) -> None:
        assert self._wake is not None
        while not self._stopping:
            self._wake.clear()
            try:
                while len(self._tasks) < self._max_in_flight:
                    entry = await self.queue.take(self._clock(), set(self._busy))
                    if entry is None:
                        break
                    self._begin(entry)
                due = await self.queue.next_due(set(self._busy))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a shared queue that cannot be reached: try again soon
                self._store_failed(exc)
                due = None
            else:
                self._store_ok()
            wait = self._poll if due is None else min(self._poll, max(0.0, due - self._clock()))
            try:
                await asyncio.wait_for(self._wake.wait(), wait)
            except asyncio.TimeoutError:
                pass

    def _begin(self, entry: Entry) -> None:
        self._busy.add(entry.message.route)
        task = asyncio.ensure_future(self._attempt(entry))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _attempt(self, entry: Entry) -> None:
        route_name = entry.message.route
        try:
            await self._try(entry)
        except asyncio.CancelledError:
            await self.queue.retry(entry)
            raise
        except Exception as exc:  # the shared store failed; the entry's lease brings it back
            self._store_failed(exc)
        finally:
            self._busy.discard(route_name)
            self._poke()

    async def _try(self, entry: Entry) -> None:
        target = self.targets.get(entry.message.route)
        now = self._clock()
        entry.attempts += 1
        if entry.first_attempt_at is None:
            entry.first_attempt_at = now
        if target is None:
            entry.error = "the route is no longer configured"
            await self._end(entry, FAILED, None)
            return
        self.stats.attempts[target.route.name] += 1
        retry_after: Optional[float] = None
        try:
            await asyncio.wait_for(target.sink.send(entry.message, now), self.policy.timeout + 1)
        except SendFailed as exc:
            entry.error, retry, retry_after = scrub(exc.reason, target.route), exc.retry, \
                exc.retry_after
        except asyncio.TimeoutError:
            entry.error, retry = "timeout", True
        except Exception as exc:  # a sink's own bug must not stop delivery or retry for an hour
            log.exception("notification sink of route %s failed", target.route.name)
            entry.error, retry = scrub(type(exc).__name__, target.route), False
        else:
            entry.error = None
            await self._end(entry, SENT, target)
            return
        now = self._clock()
        delay = self.policy.delay(entry.attempts, retry_after)
        if retry and not entry.once and \
                now + delay <= entry.first_attempt_at + self.policy.give_up_after:
            entry.not_before = now + delay
            await self.queue.retry(entry)
        else:
            await self._end(entry, FAILED, target)

    async def _end(self, entry: Entry, result: str, target: Optional[Target]) -> None:
        await self.queue.done(entry)
        record = await self._finish(entry, result, self._clock())
        if result == FAILED:
            where = target.route.safe_url if target is not None else "removed"
            log.warning("notification %s (%s) to route %s (%s) failed after %d attempt(s): %s",
                        record.id, record.event, record.route, where, record.attempts,
                        record.error)

    async def _finish(self, entry: Entry, result: str, now: float) -> Record:
        record = Record.of(entry, result, now)
        route = entry.message.route
        self.stats.messages[(route, result)] += 1
        if record.latency is not None:
            self.stats.latency.observe(record.latency)
        self.last_result[route] = (result, record.error)
        await self.journal.add(record)
        waiter = self._waiters.pop(record.id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(record)
        return record

    def _note_dropped(self, count: int, now: float) -> None:
        self._dropped_unlogged += count
        if not self._dropped_unlogged:
            return
        if self._drop_logged_at is None or now - self._drop_logged_at >= DROP_LOG_SECONDS:
            log.warning("notification queue full: dropped %d oldest message(s)",
                        self._dropped_unlogged)
            self._dropped_unlogged = 0
            self._drop_logged_at = now

    def _store_failed(self, exc: BaseException) -> None:
        reason = str(exc) or type(exc).__name__
        if self.queue_error is None:
            log.warning("notification queue unavailable: %s; delivery resumes when it answers",
                        reason)
        self.queue_error = reason

    def _store_ok(self) -> None:
        if self.queue_error is not None:
            log.info("notification queue available again")
        self.queue_error = None

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()


def scrub(text: str, route: Route) -> str:
    """`text` with the route's URL and token masked, should an error ever quote them."""
    for secret, shown in ((route.url, route.safe_url), (route.token, "***")):
        if secret and secret in text:
            text = text.replace(secret, shown)
    return text
