"""The one builder of a daemon's services: task service, hub, handlers' context, state or Redis,
and the run history with what feeds it."""

from __future__ import annotations

import gc
import logging
import time
from typing import Any, Callable, List, Mapping, Optional

import tornado.ioloop

from progressistad.alerts.routes import RouteConfig
from progressistad.core.store import TaskStore
from progressistad.daemon import notifications
from progressistad.daemon.config import Settings
from progressistad.daemon.notifications import Notifications
from progressistad.daemon.persistence.loading import StorageError, collector_paused
from progressistad.daemon.persistence.persister import StatePersister
from progressistad.history.annotator import Annotator
from progressistad.history.figures import JobFigures
from progressistad.history.recorder import Recorder
from progressistad.history.service import History, history_path, open_history
from progressistad.service import TaskService
from progressistad.transitions import TransitionObserver
from progressistad.web.context import AppContext, sweep_policy
from progressistad.web.hub import Hub
from progressistad.web.metrics import Metrics

log = logging.getLogger("progressistad")


class StartupError(Exception):
    """The daemon cannot start (port taken, Redis unreachable); the message is one line."""


class Services:
    """What one daemon runs besides its sockets: the handlers' context and the parts behind it.

    Each part is built in `build`, listens to the task service and registers its health check
    there; `problem`, `save` and `close` are what the daemon asks of the parts.
    """

    def __init__(self, ctx: AppContext, persister: Optional[StatePersister] = None,
                 cluster: Optional[Any] = None) -> None:
        self.ctx = ctx
        self.persister = persister
        self.cluster = cluster
        """This daemon's membership in the group sharing Redis (`progressistad.cluster`)."""
        self.transitions: Optional[TransitionObserver] = None
        self.history: Optional[History] = None
        self.annotator: Optional[Annotator] = None
        self.notes: List[str] = []
        """Lines for the start-up log, written once the daemon listens (so that a daemon that
        cannot bind says only that)."""
        self._maintaining = False
        self.notifications: Optional[Notifications] = None

    def log_notes(self) -> None:
        for line in self.notes:
            log.info("%s", line)

    def problem(self) -> Optional[str]:
        """What systemd's STATUS= line should say is wrong, or None when all is well."""
        parts = [part for part in (self.persister, self.cluster, self.history) if part is not None]
        return "; ".join(filter(None, (part.problem() for part in parts))) or None

    async def after_sweep(self) -> None:
        """The rest of a cleanup pass: `overdue` turned on where runs are late, and the
        history's retention (with Redis, by the daemon that swept for the group)."""
        if self.annotator is not None:
            self.annotator.check()
        leads = self.cluster is None or self.cluster.service.cleanup_leader
        if self.history is not None and leads and not self._maintaining:
            self._maintaining = True
            try:
                await self.history.maintain()
            finally:
                self._maintaining = False

    async def save(self) -> bool:
        """The final write of the state file, if there is one; False when it failed."""
        return self.persister is None or await self.persister.close()

    def reload(self, settings: Settings) -> None:
        """SIGHUP, after the settings: the notification routes read again."""
        if self.notifications is not None:
            self.notifications.reload(settings)

    async def close(self) -> None:
        """Stop notifying (what waits stays in a shared queue), write the runs that wait, then
        leave the group of daemons sharing Redis, if any."""
        if self.notifications is not None:
            await self.notifications.close()
        if self.history is not None and not await self.history.close():
            log.warning("stopped with runs not written to the history: %s",
                        self.history.health().get("error") or "the write queue was full")
        if self.cluster is not None:
            await self.cluster.close()


async def build(settings: Settings, clock: Callable[[], float] = time.time,
                on_health_change: Optional[Callable[[], None]] = None) -> Services:
    """The services, wired: on Redis with --redis-url, else in memory with the state file loaded.

    A bad route file raises RouteError (exit status 2) before anything is started.
    """
    routes = notifications.load_routes(settings)
    services = await _on_redis(settings, clock, on_health_change) if settings.redis_url else None
    # Loading and priming make long-lived objects for every task: the collector would pass
    # over them again and again, and once frozen it never scans them (bench/startup.py).
    with collector_paused():
        if services is None:
            services = _in_memory(settings, clock, on_health_change)
        # What each part primes itself with, made once (or kept from loading): with many
        # tasks, the served form of each is a good part of the start. Priming annotates no
        # task yet.
        persister = services.persister
        forms = persister.take_loaded_forms() if persister is not None else None
        if forms is None:
            forms = services.ctx.service.store.snapshot()
        _with_history(services, settings, clock, forms)
        _notify(services, routes, settings, clock, forms)
        gc.freeze()
    return services


def _notify(services: Services, routes: RouteConfig, settings: Settings,
            clock: Callable[[], float], forms: Mapping[str, Mapping[str, Any]]) -> None:
    """Notifications over the loaded tasks; their faults degrade /health without a 503."""
    ctx = services.ctx
    services.notifications = notifications.start(routes, settings, ctx.service, clock,
                                                 services.cluster, forms)
    ctx.alerts = services.notifications.alerts
    ctx.add_health_check("notifications", ctx.alerts.health, essential=False)


def _in_memory(settings: Settings, clock: Callable[[], float],
               on_health_change: Optional[Callable[[], None]]) -> Services:
    store = TaskStore(max_tasks=settings.max_tasks,
                      telemetry_budget_bytes=settings.telemetry_budget_bytes)
    service = TaskService(store, clock, sweep_policy(settings))
    ctx = _context(settings, service, clock)
    if not settings.storage_path:
        return Services(ctx)
    persister = StatePersister(settings.storage_path, settings.persist_interval, service.store,
                               ctx.metrics, clock=clock, on_health_change=on_health_change)
    try:
        persister.load()
    except StorageError as exc:
        raise StartupError(str(exc)) from None
    service.add_listener(persister.on_changes)
    ctx.add_health_check("persistence", persister.health, essential=True)
    return Services(ctx, persister=persister)


async def _on_redis(settings: Settings, clock: Callable[[], float],
                    on_health_change: Optional[Callable[[], None]]) -> Services:
    """Join the group sharing Redis (imported only here: redis-py is an optional dependency)."""
    try:
        from progressistad.cluster import group
    except ImportError:
        raise StartupError("--redis-url needs redis-py: install python3-redis or "
                           "pip install 'progressistad[redis]'") from None
    try:
        cluster = await group.join(settings, clock)
    except ConnectionError as exc:
        raise StartupError(str(exc)) from None
    if on_health_change is not None:
        cluster.link.on_change = on_health_change
    if settings.storage_path:
        log.warning("--storage-path is not used with --redis-url: Redis keeps the tasks")
    ctx = _context(settings, cluster.service, clock)
    ctx.add_health_check("redis", cluster.service.health, essential=True)
    return Services(ctx, cluster=cluster)


def _context(settings: Settings, service: Any, clock: Callable[[], float]) -> AppContext:
    """The handlers' context around `service`, with a hub that hears its changes."""
    hub = Hub(
        service.store,
        interval=settings.broadcast_interval,
        stall_timeout=settings.ws_stall_timeout,
        clock=time.monotonic,
        schedule=tornado.ioloop.IOLoop.current().call_later,
        perf_clock=time.perf_counter,
        cpu_clock=time.thread_time,
        sample=service.sample,
        heartbeat_interval=settings.ws_heartbeat_interval,
    )
    service.add_listener(hub.publish)
    return AppContext(settings, service, hub, clock, Metrics())


def _with_history(services: Services, settings: Settings, clock: Callable[[], float],
                  forms: Mapping[str, Mapping[str, Any]]) -> None:
    """The run history (none with --history-max-runs 0), fed by the transitions of the tasks:
    runs recorded where they were made, expectations served on the tasks."""
    cluster = services.cluster
    path = history_path(settings.history_path, settings.storage_path)
    history = open_history(
        clock=clock, path=path, redis_client=None if cluster is None else cluster.backend.client,
        redis_prefix=settings.redis_prefix, retention_days=settings.history_retention_days,
        max_runs=settings.history_max_runs, overdue_factor=settings.overdue_factor,
        children=settings.history_children, note=services.notes.append)
    if history is None:
        return
    if cluster is not None and settings.history_path:
        log.warning("--history-path is not used with --redis-url: Redis keeps the history")
    ctx = services.ctx
    service = ctx.service
    observer = TransitionObserver(service.store)
    service.add_origin_listener(observer.on_changes)
    observer.prime(forms)
    annotator = Annotator(history, service, observer, clock,
                          tornado.ioloop.IOLoop.current().add_callback)
    observer.subscribe(Recorder(history).on_transitions)
    observer.subscribe(annotator.on_transitions)
    history.on_expectations = annotator.expectations_changed
    annotator.prime(forms)
    ctx.history = history
    ctx.job_figures = JobFigures(history, settings.metrics_max_jobs)
    ctx.add_health_check("history", history.health, essential=False)
    services.transitions, services.history, services.annotator = observer, history, annotator
