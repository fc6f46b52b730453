"""`Alerts`: what the daemon holds of notifications, from task changes to delivered messages."""

from __future__ import annotations

import asyncio
import logging
import socket
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional

from progressistad import __version__, contract
from progressistad.alerts import events, messages
from progressistad.alerts.delivery import Delivery, DeliveryStats, RetryPolicy, Target
from progressistad.alerts.events import Seen
from progressistad.alerts.grouping import Gatherer
from progressistad.alerts.queue import SENT, DeliveryLog, Entry, MessageQueue
from progressistad.alerts.routes import Route, RouteConfig, RouteError
from progressistad.alerts.sinks import TIMEOUT, Outbound, http, make_sink
from progressistad.alerts import routes as route_file

log = logging.getLogger("progressistad.alerts")

TEST_WAIT = contract.NOTIFY_TEST_WAIT
WORKER_THREADS = 2
"""Threads for mail and Apprise sends, which block."""


class UnknownRoute(LookupError):
    """`send_test` was asked for a route the file does not have."""


class Alerts:
    """Routes, the events they want, bursts being gathered, and delivery. Build it on the loop."""

    def __init__(self, config: RouteConfig, clock: Callable[[], float], *,
                 dashboard_url: Optional[str] = None, hostname: Optional[str] = None,
                 queue: Optional[MessageQueue] = None, journal: Optional[DeliveryLog] = None,
                 policy: RetryPolicy = RetryPolicy(),
                 gathers: Callable[[], bool] = lambda: True) -> None:
        self._clock = clock
        self._gathers = gathers
        self._hostname = hostname or socket.gethostname()
        self._executor = ThreadPoolExecutor(WORKER_THREADS,
                                            thread_name_prefix="progressista-notify")
        self._out = Outbound(http=http.client(), executor=self._executor,
                             dashboard_url=dashboard_url, hostname=self._hostname,
                             user_agent=f"progressistad/{__version__}",
                             timeout=min(policy.timeout, TIMEOUT))
        self.delivery = Delivery({}, clock, queue=queue, journal=journal, policy=policy)
        self._gatherer = Gatherer()
        self._seen: Dict[str, Seen] = {}
        self._timer: Optional[asyncio.TimerHandle] = None
        self._timer_at: Optional[float] = None
        self.reload_error: Optional[str] = None
        self._use(config)

    @classmethod
    def load(cls, path: str, env: Mapping[str, str], clock: Callable[[], float],
             **kwargs: Any) -> "Alerts":
        """Alerts for the route file at `path`; raises RouteError (one line) when it is bad."""
        return cls(route_file.load(path, env), clock, **kwargs)

    @property
    def config(self) -> RouteConfig:
        return self._config

    def start(self) -> None:
        """Begin delivering, on the running loop."""
        self.delivery.start()

    def reload(self, path: Optional[str], env: Mapping[str, str]) -> bool:
        """Read the route file again (None: no routes); a bad one keeps the routes in use, is
        logged, gives False."""
        try:
            config = route_file.load(path, env) if path else RouteConfig()
        except RouteError as exc:
            self.reload_error = str(exc)
            log.error("%s; the previous notification routes stay in use", exc)
            return False
        self.reload_error = None
        self._use(config)
        self._gatherer.forget(route.name for route in config.routes)
        log.info("notification routes reloaded: %d route(s)", len(config.routes))
        return True

    def _use(self, config: RouteConfig) -> None:
        self._config = config
        self.delivery.targets = {route.name: Target(route, make_sink(route, config.smtp, self._out))
                                 for route in config.routes}
        self._by_kind: Dict[str, List[Route]] = {
            kind: [route for route in config.routes if kind in route.events]
            for kind in events.KINDS}
        self._wants_overdue = bool(self._by_kind[events.OVERDUE])

    def prime(self, tasks: Iterable[Mapping[str, Any]]) -> None:
        """Remember tasks present at start (loaded from disk, or a shared store's snapshot)."""
        for task in tasks:
            self._seen[task["task_id"]] = events.seen(task)

    def observe(self, upserted: Iterable[Mapping[str, Any]], removed: Iterable[str] = ()) -> None:
        """Hear tasks that changed (served form) and ids removed; gather what routes want."""
        for task in upserted:
            self._observe_one(task, self._seen.get(task["task_id"]))
        self._forget(removed)

    def listener(self, reader: Any, served: Optional[Callable[[Any], Mapping[str, Any]]] = None,
                 overdue: Optional[Callable[[Any], bool]] = None) -> Callable[[Any], None]:
        """A task-service listener reading changed tasks from `reader` (the store or a mirror)."""
        # Ingest pays only for a dict lookup per change: the served form (`served(task)`, by
        # default `task.to_wire()`) is made when the status changed, or, while a route wants
        # `overdue`, when `overdue(task)` (a cheap flag from the history's expectations,
        # which the served form carries as `overdue`) differs from what was seen.
        seen = self._seen
        read = reader.get

        def on_changes(changes: Any) -> None:
            check_overdue = overdue is not None and self._wants_overdue
            for task_id in changes.upserted:
                task = read(task_id)
                if task is None:
                    continue
                before = seen.get(task_id)
                if before is not None and before.status == task.status and not (
                        check_overdue and overdue(task) != before.overdue):
                    continue  # the hot path: an update of a running task
                self._observe_one(served(task) if served else task.to_wire(), before)
            if changes.removed:
                self._forget(changes.removed)
        return on_changes

    def _observe_one(self, task: Mapping[str, Any], before: Optional[Seen]) -> None:
        self._seen[task["task_id"]] = events.remember(before, task)
        found = events.kinds(before, task)
        if not found or not self._gathers():
            return
        now = self._clock()
        group = events.group_of(task)
        for kind in found:
            for route in self._by_kind[kind]:
                if events.wants(route, kind, task):
                    due = self._gatherer.add(route, kind, task, now, group)
                    if due is not None and (self._timer_at is None or due < self._timer_at):
                        self._schedule(due)

    def _forget(self, removed: Iterable[str]) -> None:
        for task_id in removed:
            self._seen.pop(task_id, None)

    def flush(self) -> int:
        """Queue the messages whose burst is over; how many (the timer calls this)."""
        self._timer = self._timer_at = None
        ready = self._gatherer.due(self._clock())
        for message in ready:
            asyncio.ensure_future(self.delivery.submit(message))
        due = self._gatherer.next_due()
        if due is not None:
            self._schedule(due)
        return len(ready)

    def _schedule(self, due: float) -> None:
        """Have `flush` run at `due` (epoch seconds) instead of any later time set before."""
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = due
        self._timer = asyncio.get_running_loop().call_later(max(0.0, due - self._clock()),
                                                            self.flush)

    async def send_test(self, route_name: str, wait: float = TEST_WAIT) -> Dict[str, Any]:
        """Send a test message through `route_name` once: its record, or its entry after `wait`."""
        if self._config.get(route_name) is None:
            raise UnknownRoute(route_name)
        message = messages.test(route_name, self._hostname, self._clock())
        outcome = self.delivery.expect(message.id)
        await self.delivery.submit(message, once=True)
        try:
            return (await asyncio.wait_for(asyncio.shield(outcome), wait)).to_dict()
        except asyncio.TimeoutError:
            self.delivery.forget(message.id)
            pending = [e for e in await self.delivery.queue.pending() if e.message.id == message.id]
            return pending[0].describe() if pending else {"id": message.id, "result": "queued"}

    async def deliveries(self) -> List[Dict[str, Any]]:
        """GET /notifications: deliveries under way (newest first), then the finished ones."""
        pending = [entry.describe() for entry in reversed(await self.delivery.queue.pending())]
        return pending + [record.to_dict() for record in await self.delivery.journal.last()]

    async def queued(self) -> Optional[int]:
        """Messages waiting or being sent, for /metrics; None when a shared queue cannot answer."""
        try:
            return await self.delivery.queue.length()
        except asyncio.CancelledError:
            raise
        except Exception:  # Redis away: /health says so; the gauge is left out
            return None

    def stats(self) -> DeliveryStats:
        """Counters and the latency histogram, for /metrics."""
        return self.delivery.stats

    def health(self) -> Dict[str, Any]:
        """The /health report: not ok while a route's last message, a reload or the queue fails."""
        failing = {name: error for name, (result, error) in self.delivery.last_result.items()
                   if result != SENT and self._config.get(name) is not None}
        error = self.reload_error or self.delivery.queue_error
        return {"ok": not failing and error is None, "routes": len(self._config.routes),
                "gathering": len(self._gatherer), "failing": failing, "error": error}

    async def close(self) -> None:
        """Stop: what bursts hold goes to the queue (a shared one keeps it), then delivery ends."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = self._timer_at = None
        now = self._clock()
        for message in self._gatherer.drain(now):
            await self.delivery.queue.push(Entry(message, queued_at=now))
        await self.delivery.close()
        self._out.http.close()
        self._executor.shutdown(wait=False)

