"""The one background sender per process: polls live bars, batches changes, POSTs them.

A bar's update() never touches this module: the sender thread reads each
registered bar's state (n, total, desc, unit, postfix, metrics) every push
interval and sends what changed, so the measured loop pays nothing per
iteration. Log lines are queued per task and drained into the next batch.
Starts and closes wake the thread at once. Nothing here raises into user code.
"""

from __future__ import annotations

import atexit
import http.client
import json
import logging
import os
import sys
import threading
import time
import weakref
from collections import OrderedDict
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Tuple

from progressistad import contract
from progressistad.client.events import State, log_chunks, make_event
from progressistad.client.logqueue import LINES_PER_TASK, LogQueue
from progressistad.client.settings import safe_url
from progressistad.client.transport import Connection, Response

log = logging.getLogger("progressistad.client")

IDLE_WAIT = 1.0
MIN_GAP = 0.02
"""Least time between two sends, so a burst of new bars costs one batch, not one request each."""
MAX_BACKOFF = 5.0
MAX_BODY_BYTES = 512 * 1024
CHILD_CLOSE_WAIT = 1.0
"""Longest a bar's close() waits for delivery in a child process (never while the daemon is failing)."""
MAX_PENDING_FINISHED = 10000
"""Closed bars waiting for a down server, per endpoint; the oldest are dropped beyond this."""
MAX_QUEUED_LOG_LINES = 20000
"""Log lines held for all the tasks of a process together (they pile up while the daemon is away)."""

EndpointKey = Tuple[str, float, Tuple[Tuple[str, str], ...]]


class Endpoint:
    """One daemon URL with its headers: a keep-alive connection, pending final events, failure state."""

    def __init__(self, url: str, timeout: float, headers: Mapping[str, str]) -> None:
        self.url = url
        self.connection = Connection(url, timeout, headers)
        self.finals: "OrderedDict[str, Track]" = OrderedDict()
        """Finished bars by task id, until their final event (and queued log lines) are delivered."""
        self.failures = 0
        self.retry_at = 0.0
        self.dropped_logged = False

    def ready(self, now: float) -> bool:
        return now >= self.retry_at

    def post(self, events: List[dict]) -> List[bool]:
        """POST `events` in batches; which of them the daemon took (or refused for good)."""
        done: List[bool] = []
        for chunk in _chunks(events):
            done.extend(self._post_chunk(chunk))
        return done

    def _post_chunk(self, events: List[dict]) -> List[bool]:
        if self.failures and not self.ready(time.monotonic()):
            return [False] * len(events)
        try:
            response = self.connection.request("POST", payload=events)
        except (OSError, http.client.HTTPException) as error:
            self._failed(f"{type(error).__name__}: {error}")
            return [False] * len(events)
        if response.ok:
            self._succeeded()
            return [True] * len(events)
        if response.status in (400, 413) and len(events) > 1:
            half = len(events) // 2
            return self._post_chunk(events[:half]) + self._post_chunk(events[half:])
        if response.status in (400, 413):
            self._drop(events[0], response)
            return [True]
        self._failed(response.error, response.retry_after)
        return [False] * len(events)

    def _succeeded(self) -> None:
        if self.failures:
            log.info("progressista: reporting to %s again", safe_url(self.url))
        self.failures = 0
        self.retry_at = 0.0

    def _failed(self, reason: str, retry_after: Optional[float] = None) -> None:
        if not self.failures:
            log.warning("progressista: cannot report progress to %s (%s); "
                        "retrying quietly in the background", safe_url(self.url), reason)
        self.failures += 1
        delay = min(MAX_BACKOFF, 0.25 * 2 ** min(self.failures, 5))
        if retry_after is not None:
            delay = min(MAX_BACKOFF, max(delay, retry_after))
        self.retry_at = time.monotonic() + delay

    def _drop(self, event: dict, response: Response) -> None:
        if not self.dropped_logged:
            log.warning("progressista: the daemon at %s refused an event for %r (%s); dropped",
                        safe_url(self.url), event.get("task_id"), response.error)
            self.dropped_logged = True


def _chunks(events: List[dict]) -> List[List[dict]]:
    limit = contract.BATCH_MAX_EVENTS
    chunks = [events[i:i + limit] for i in range(0, len(events), limit)]
    sized: List[List[dict]] = []
    for chunk in chunks:
        sized.extend(_split_by_size(chunk))
    return sized


def _split_by_size(chunk: List[dict]) -> List[List[dict]]:
    if len(chunk) > 1 and len(json.dumps(chunk, separators=(",", ":"))) > MAX_BODY_BYTES:
        half = len(chunk) // 2
        return _split_by_size(chunk[:half]) + _split_by_size(chunk[half:])
    return [chunk]


class Track:
    """One live bar as the sender sees it: how to read it and what was last delivered."""

    __slots__ = ("task_id", "endpoint", "push_every", "bar", "read", "meta",
                 "started", "delivered", "sent_at", "logs", "final")

    def __init__(self, task_id: str, endpoint: Endpoint, push_every: float, bar: Any,
                 read: Callable[[Any], State], meta: Optional[dict]) -> None:
        self.task_id = task_id
        self.endpoint = endpoint
        self.push_every = push_every
        self.bar = weakref.ref(bar)
        self.read = read
        self.meta = meta
        self.started = False
        self.delivered: Optional[State] = None
        self.sent_at = 0.0
        self.logs = LogQueue()
        self.final: dict = {}
        """The close or error event, once the bar is finished."""


class Item(NamedTuple):
    """One event of a batch and what its delivery settles."""

    event: dict
    track: Track
    state: Optional[State]
    """The bar's state this event delivers, if it carries one."""
    upto: Optional[int]
    """The sequence number of the last log line it carries."""
    final: bool = False


def with_log(item: Item, queued: List[Tuple[int, str]]) -> List[Item]:
    """`item` and what it takes to carry `queued` lines, 50 to an event.

    The state event carries the first run of lines and later runs follow it;
    a final event carries the last run, so no event reopens a task after it.
    """
    chunks = log_chunks(queued)
    if not chunks:
        return [item]
    carried = chunks[-1] if item.final else chunks[0]
    main = item._replace(event={**item.event, "log": [line for _, line in carried]},
                         upto=carried[-1][0])
    extra = [Item({"task_id": item.track.task_id, "status": contract.UPDATE,
                   "log": [line for _, line in chunk]}, item.track, None, chunk[-1][0])
             for chunk in (chunks[:-1] if item.final else chunks[1:])]
    return extra + [main] if item.final else [main] + extra


class Sender:
    """The background thread and the bars it reports for."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tracks: Dict[int, Track] = {}
        self._endpoints: Dict[EndpointKey, Endpoint] = {}
        self._wake = threading.Event()
        self._done = threading.Condition()
        self._flush_asked = 0
        self._flush_served = 0
        self._stopped = False
        self._thread: Optional[threading.Thread] = None
        self._log_held = 0
        self._drops_logged = False
        self.dropped_log_lines = 0
        """Log lines dropped from full queues, since the sender started."""

    # Called from user threads: short, never blocking on the network.
    def track(self, bar: Any, read: Callable[[Any], State], task_id: str, url: str,
              headers: Mapping[str, str], timeout: float, push_every: float,
              meta: Optional[dict]) -> Optional[Track]:
        """Start reporting `bar`; its start event goes out on the sender's next wake-up, at once."""
        if self._stopped:
            return None
        with self._lock:
            endpoint = self._endpoint(url, headers, timeout)
            track = Track(task_id, endpoint, push_every, bar, read, meta)
            self._tracks[id(track)] = track
        self._ensure_thread()
        self._wake.set()
        return track

    def finish(self, track: Track, status: str, state: State, meta: Optional[dict] = None) -> None:
        """Stop reporting a bar and queue its final event (close or error, `meta` added), sent promptly."""
        sent_meta = {**(track.meta or {}), **meta} if meta else track.meta
        event = make_event(track.task_id, status, state, sent_meta, previous=track.delivered)
        with self._lock:
            self._tracks.pop(id(track), None)
            track.final = event
            finals = track.endpoint.finals
            replaced = finals.pop(track.task_id, None)
            if replaced is not None and replaced is not track:
                self._log_held -= replaced.logs.clear()
            finals[track.task_id] = track
            while len(finals) > MAX_PENDING_FINISHED:
                self._log_held -= finals.popitem(last=False)[1].logs.clear()
        self._wake.set()

    def forget(self, track: Track) -> None:
        """Stop reporting a bar without a final event."""
        with self._lock:
            if self._tracks.pop(id(track), None) is not None:
                self._log_held -= track.logs.clear()

    def log(self, track: Track, lines: List[str]) -> None:
        """Queue log lines of a live bar, to go out with its next report."""
        if not lines:
            return
        with self._lock:
            if self._tracks.get(id(track)) is not track:
                return
            added, dropped = track.logs.add(lines, MAX_QUEUED_LOG_LINES - self._log_held)
            self._log_held += added
            self.dropped_log_lines += dropped
            first_drop = bool(dropped and not self._drops_logged)
            self._drops_logged = self._drops_logged or first_drop
        if first_drop:
            # INFO: the daemon shows only the newest lines anyway, and a daemon that is away
            # was already logged once at WARNING.
            log.info("progressista: more than %d log lines of a task waited to be sent; "
                     "the oldest were dropped", LINES_PER_TASK)

    def touch(self, track: Track) -> None:
        """Send a bar's state again on the next report even if unchanged, so a quiet task stays fresh."""
        with self._lock:
            if track.started:
                track.delivered = None

    def flush(self, timeout: float) -> bool:
        """Send every pending change now, retrying a failing daemon once; False if not done in time."""
        thread = self._thread
        if thread is None or not thread.is_alive() or thread is threading.current_thread():
            return not self._pending()
        deadline = time.monotonic() + timeout
        with self._done:
            self._flush_asked += 1
            wanted = self._flush_asked
            self._wake.set()
            while self._flush_served < wanted:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._done.wait(left)
        return True

    def settle_finished(self, track: Track) -> None:
        """In a child process, wait (boundedly) for a final event: pools may kill workers without atexit."""
        if not in_child_process() or track.endpoint.failures:
            return
        self.flush(min(track.endpoint.connection.timeout, CHILD_CLOSE_WAIT))

    def stop(self, timeout: float) -> None:
        """Flush, then end the thread; later bars are not reported."""
        self.flush(timeout)
        self._stopped = True
        self._wake.set()

    # The sender thread.
    def _ensure_thread(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="progressista-sender",
                                                daemon=True)
                self._thread.start()

    def _run(self) -> None:
        last = 0.0
        while not self._stopped:
            self._wake.wait(self._interval())
            gap = last + MIN_GAP - time.monotonic()
            if gap > 0 and self._flush_asked == self._flush_served:
                time.sleep(gap)
            self._wake.clear()
            last = time.monotonic()
            with self._done:
                asked = self._flush_asked
            try:
                self._tick(asked > self._flush_served)
            except Exception:  # pragma: no cover - a bug here must not kill reporting
                log.exception("progressista: sender error")
            with self._done:
                self._flush_served = asked
                self._done.notify_all()

    def _interval(self) -> float:
        with self._lock:
            intervals = [track.push_every for track in self._tracks.values()]
        return min(intervals) if intervals else IDLE_WAIT

    def _tick(self, flushing: bool) -> None:
        now = time.monotonic()
        batches = self._collect(now, flushing)
        for endpoint, items in batches.items():
            if flushing:
                endpoint.retry_at = 0.0
            delivered = endpoint.post([item.event for item in items])
            self._settle(endpoint, items, delivered, now)

    def _collect(self, now: float, flushing: bool) -> Dict[Endpoint, List[Item]]:
        """Per endpoint, every event due now: live bars' changes, then finished bars' last words."""
        with self._lock:
            live = [(track, track.logs.peek()) for track in self._tracks.values()]
            ending = [(track, track.logs.peek()) for ep in self._endpoints.values()
                      for track in ep.finals.values()]
        batches: Dict[Endpoint, List[Item]] = {}
        for track, queued in live:
            items = self._due(track, queued, now, flushing)
            if items:
                batches.setdefault(track.endpoint, []).extend(items)
        for track, queued in ending:
            batches.setdefault(track.endpoint, []).extend(
                with_log(Item(track.final, track, None, None, True), queued))
        return {ep: items for ep, items in batches.items() if flushing or ep.ready(now)}

    def _due(self, track: Track, queued: List[Tuple[int, str]], now: float,
             flushing: bool) -> List[Item]:
        bar = track.bar()
        if bar is None:
            self.forget(track)
            return []
        state = track.read(bar)
        if not track.started:
            event = make_event(track.task_id, contract.START, state, track.meta)
        elif ((queued or state != track.delivered)
              and (flushing or now - track.sent_at >= track.push_every)):
            event = make_event(track.task_id, contract.UPDATE, state, previous=track.delivered)
        else:
            return []
        return with_log(Item(event, track, state, None), queued)

    def _settle(self, endpoint: Endpoint, items: List[Item], delivered: List[bool],
                now: float) -> None:
        with self._lock:
            for item, ok in zip(items, delivered):
                if not ok:
                    continue
                track = item.track
                if item.upto is not None:
                    self._log_held -= track.logs.acknowledge(item.upto)
                if item.final:
                    if endpoint.finals.get(track.task_id) is track:
                        del endpoint.finals[track.task_id]
                        self._log_held -= track.logs.clear()
                elif item.state is not None:
                    track.started = True
                    track.delivered = item.state
                    track.sent_at = now

    def _endpoint(self, url: str, headers: Mapping[str, str], timeout: float) -> Endpoint:
        key = (url, timeout, tuple(sorted(headers.items())))
        endpoint = self._endpoints.get(key)
        if endpoint is None:
            endpoint = self._endpoints[key] = Endpoint(url, timeout, headers)
        return endpoint

    def _pending(self) -> bool:
        with self._lock:
            return any(ep.finals for ep in self._endpoints.values()) or any(
                not t.started or t.logs for t in self._tracks.values())

    def request_timeout(self) -> float:
        with self._lock:
            timeouts = [ep.connection.timeout for ep in self._endpoints.values()]
        return max(timeouts, default=0.0)


_sender: Optional[Sender] = None
_sender_lock = threading.Lock()
_first_pid = os.getpid()


def in_child_process() -> bool:
    """Whether this is a forked child or a multiprocessing worker, which may end without atexit."""
    if os.getpid() != _first_pid:
        return True
    mp = sys.modules.get("multiprocessing")
    return mp is not None and mp.parent_process() is not None


def get_sender() -> Sender:
    """This process's sender (a forked child gets its own)."""
    global _sender
    if _sender is None:
        with _sender_lock:
            if _sender is None:
                _sender = Sender()
                _finalize_in_multiprocessing_children()
    return _sender


def flush(timeout: Optional[float] = None) -> bool:
    """Send every pending progress change now; waits at most `timeout` (default: request timeout + 1 s)."""
    sender = _sender
    if sender is None:
        return True
    return sender.flush(sender.request_timeout() + 1.0 if timeout is None else timeout)


def _after_fork_in_child() -> None:
    global _sender, _sender_lock
    _sender = None
    _sender_lock = threading.Lock()


def _at_exit() -> None:
    sender = _sender
    if sender is not None:
        sender.stop(sender.request_timeout() + 1.0)


def _finalize_in_multiprocessing_children() -> None:
    """multiprocessing children leave through os._exit, skipping atexit: flush from its finalizers."""
    mp = sys.modules.get("multiprocessing")
    if mp is None or mp.parent_process() is None:
        return
    import multiprocessing.util

    multiprocessing.util.Finalize(None, _at_exit, exitpriority=10)


atexit.register(_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
