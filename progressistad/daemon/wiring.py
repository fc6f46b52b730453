"""The one builder of a daemon's services: task service, hub, handlers' context, state or Redis."""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Optional

import tornado.ioloop

from progressistad.alerts.routes import RouteConfig
from progressistad.core.store import TaskStore
from progressistad.daemon import notifications
from progressistad.daemon.config import Settings
from progressistad.daemon.notifications import Notifications
from progressistad.daemon.persistence.loading import StorageError
from progressistad.daemon.persistence.persister import StatePersister
from progressistad.service import TaskService
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
        self.notifications: Optional[Notifications] = None

    def problem(self) -> Optional[str]:
        """What systemd's STATUS= line should say is wrong, or None when all is well."""
        parts = [part for part in (self.persister, self.cluster) if part is not None]
        return "; ".join(filter(None, (part.problem() for part in parts))) or None

    async def save(self) -> bool:
        """The final write of the state file, if there is one; False when it failed."""
        return self.persister is None or await self.persister.close()

    def reload(self, settings: Settings) -> None:
        """SIGHUP, after the settings: the notification routes read again."""
        if self.notifications is not None:
            self.notifications.reload(settings)

    async def close(self) -> None:
        """Stop notifying (what waits stays in a shared queue), then leave the group, if any."""
        if self.notifications is not None:
            await self.notifications.close()
        if self.cluster is not None:
            await self.cluster.close()


async def build(settings: Settings, clock: Callable[[], float] = time.time,
                on_health_change: Optional[Callable[[], None]] = None) -> Services:
    """The services, wired: on Redis with --redis-url, else in memory with the state file loaded.

    A bad route file raises RouteError (exit status 2) before anything is started.
    """
    routes = notifications.load_routes(settings)
    if settings.redis_url:
        services = await _on_redis(settings, clock, on_health_change)
    else:
        services = _in_memory(settings, clock, on_health_change)
    _notify(services, routes, settings, clock)
    return services


def _notify(services: Services, routes: RouteConfig, settings: Settings,
            clock: Callable[[], float]) -> None:
    """Notifications over the loaded tasks; their faults degrade /health without a 503."""
    ctx = services.ctx
    services.notifications = notifications.start(routes, settings, ctx.service, clock,
                                                 services.cluster)
    ctx.alerts = services.notifications.alerts
    ctx.health_checks["notifications"] = ctx.alerts.health


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
    ctx.health_checks["persistence"] = persister.health
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
    ctx.health_checks["redis"] = cluster.service.health
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
        sample=service.sample,
        heartbeat_interval=settings.ws_heartbeat_interval,
    )
    service.add_listener(hub.publish)
    return AppContext(settings, service, hub, clock, Metrics())
