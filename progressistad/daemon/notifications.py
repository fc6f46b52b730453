"""The daemon's notifications (SPEC section 13): the route file, the `Alerts` it holds, reload.

`load_routes` reads the route file first, so that a bad one stops the daemon (exit
status 2) before anything else starts; `start` builds the `Alerts` around the task
service once its tasks are loaded, on the group's Redis when there is one.
"""

from __future__ import annotations

import logging
import socket
from typing import Any, Callable, Dict, List, Mapping, Optional

from progressistad.alerts import Alerts
from progressistad.alerts import routes as route_file
from progressistad.alerts.routes import RouteConfig
from progressistad.alerts.sinks import TIMEOUT
from progressistad.daemon.config import CREDENTIALS_ENV_VAR, Settings

log = logging.getLogger("progressistad.alerts")

QUEUE_LEASE_SECONDS = 3 * TIMEOUT
"""How long a daemon of a group holds a message it is sending; another sends it after that."""
GATHER_LEASE_SECONDS = 10.0
"""How long the daemon that gathers a group's bursts holds that role without renewing it."""


def route_env(settings: Settings) -> Dict[str, str]:
    """What the route file reads of the environment: where systemd credentials are."""
    if settings.credentials_directory:
        return {CREDENTIALS_ENV_VAR: settings.credentials_directory}
    return {}


def load_routes(settings: Settings) -> RouteConfig:
    """The routes of --notify-config (none without one); raises RouteError in one line."""
    if not settings.notify_config:
        return RouteConfig()
    return route_file.load(settings.notify_config, route_env(settings))


def dashboard_url(settings: Settings, hostname: str) -> str:
    """Where a message links to: --public-url, else http://HOSTNAME:PORT/ under --base-path."""
    return settings.public_url or f"http://{hostname}:{settings.port}{settings.base_path}/"


class Notifications:
    """The daemon's part in notifications: its Alerts and, in a group, the gathering lease."""

    def __init__(self, alerts: Alerts, lease: Optional[Any] = None) -> None:
        self.alerts = alerts
        self.lease = lease

    def reload(self, settings: Settings) -> bool:
        """SIGHUP: the route file read again; a bad one keeps the routes in use (and is logged)."""
        return self.alerts.reload(settings.notify_config, route_env(settings))

    async def close(self) -> None:
        """Hand over what bursts hold and stop delivering, then give the gathering lease back."""
        await self.alerts.close()
        if self.lease is not None:
            await self.lease.close()


def start(config: RouteConfig, settings: Settings, service: Any, clock: Callable[[], float],
          cluster: Optional[Any] = None,
          forms: Optional[Mapping[str, Mapping[str, Any]]] = None) -> Notifications:
    """Alerts on `config`, primed with the tasks present (`forms`, their served forms by id,
    when the caller has them already), listening to `service`, started."""
    hostname = socket.gethostname()
    shared = _on_redis(cluster) if cluster is not None else {}
    alerts = Alerts(config, clock, dashboard_url=dashboard_url(settings, hostname),
                    hostname=hostname, **shared)
    alerts.prime((service.store.snapshot() if forms is None else forms).values())
    service.add_listener(alerts.listener(service.store))
    alerts.start()
    lease = shared.get("gathers")
    if lease is not None:
        lease.start()
    if config.routes:
        log.info("notifications: %d route(s) from %s", len(config.routes), config.path)
        warn_if_isolated()
    return Notifications(alerts, lease)


def _on_redis(cluster: Any) -> Dict[str, Any]:
    """The queue, the delivery log and the gathering lease of the group (alerts.shared)."""
    from progressistad.alerts import shared

    client, prefix = cluster.backend.client, cluster.prefix
    return {"queue": shared.RedisQueue(client, prefix, QUEUE_LEASE_SECONDS),
            "journal": shared.RedisLog(client, prefix),
            "gathers": shared.GatherLease(client, prefix, cluster.backend.owner,
                                          GATHER_LEASE_SECONDS)}


def describe(settings: Settings) -> List[str]:
    """The `--print-config` lines of the routes, secrets redacted; raises RouteError."""
    return load_routes(settings).describe()


def isolation() -> Optional[str]:
    """Why this process cannot reach another host (its unit's sandbox), or None."""
    try:
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    except OSError as exc:
        return f"it may not open network sockets ({exc.strerror or exc}; RestrictAddressFamilies=)"
    probe.close()
    try:
        names = [name for _, name in socket.if_nameindex()]
    except OSError:
        return None
    if names and all(name == "lo" for name in names):
        return "its only network interface is loopback (PrivateNetwork=)"
    return None


def warn_if_isolated(probe: Callable[[], Optional[str]] = isolation) -> None:
    """Say once, at start, that the routes configured cannot be reached from this sandbox."""
    reason = probe()
    if reason is not None:
        log.warning("notification routes are configured but cannot be reached: %s; run "
                    "progressistad.service instead of the socket-activated unit to send them",
                    reason)
