"""The daemon: build the services once, bind, run the timers, handle signals, stop in order."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import socket
import sys
import time
from typing import Callable, Dict, List, Mapping, Optional, Sequence

import tornado.ioloop
import tornado.netutil

from progressistad import __version__, contract
from progressistad.alerts import RouteError
from progressistad.daemon import notifications
from progressistad.daemon.activation import ActivationError, describe, inherited_sockets
from progressistad.daemon.config import (
    ConfigError, ParsedConfig, Settings, format_config, parse_config, reloadable_changes,
)
from progressistad.daemon.descriptors import (
    connection_limit, open_files_limit, raise_open_files_limit,
)
from progressistad.daemon.logs import configure_logging, journal_line, set_level
from progressistad.daemon.systemd import EventRate, Notifier, status_line
from progressistad.daemon.wiring import Services, StartupError, build
from progressistad.web.app import make_app
from progressistad.web.context import AppContext
from progressistad.web.server import GatewayServer, make_server

log = logging.getLogger("progressistad")

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_USAGE = 2

STATUS_INTERVAL = 5.0
"""Seconds between two refreshes of systemd's STATUS= line."""
CLOSE_CONNECTIONS_TIMEOUT = 2.0
"""Seconds shutdown waits for HTTP requests in flight."""


def bind(settings: Settings) -> List[socket.socket]:
    try:
        return tornado.netutil.bind_sockets(settings.port, settings.host or None)
    except OSError as exc:
        where = f"{settings.host}:{settings.port}"
        if exc.errno == errno.EADDRINUSE:
            raise StartupError(f"cannot listen on {where}: the port is already in use") from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise StartupError(f"cannot listen on {where}: no such address on this host") from None
        if exc.errno == errno.EACCES:
            raise StartupError(f"cannot listen on {where}: permission denied") from None
        raise StartupError(f"cannot listen on {where}: {exc.strerror}") from None
    except socket.gaierror as exc:
        raise StartupError(f"cannot listen on {settings.host}: {exc.strerror}") from None


def listening_sockets(settings: Settings, env: Mapping[str, str]) -> List[socket.socket]:
    """The sockets systemd passed in (socket activation), else freshly bound ones."""
    try:
        inherited = inherited_sockets(env, os.getpid())
    except ActivationError as exc:
        raise StartupError(f"socket activation: {exc}") from None
    if inherited:
        log.info("socket activation: serving %d inherited socket(s); --host/--port unused",
                 len(inherited))
        return inherited
    return bind(settings)


class Daemon:
    """One running progressistad: its server, timers, signals and shutdown sequence."""

    def __init__(self, settings: Settings, argv: Sequence[str] = (),
                 env: Optional[Mapping[str, str]] = None,
                 notifier: Optional[Notifier] = None) -> None:
        self.settings = settings
        self._argv = list(argv)
        self._env: Dict[str, str] = dict(env or {})
        self.notifier = notifier or Notifier()
        self._stopped: Optional[asyncio.Event] = None
        self._stopping = False
        self._exit_status = EXIT_OK
        self._timers: List[tornado.ioloop.PeriodicCallback] = []
        self.services: Optional[Services] = None
        self.server: Optional[GatewayServer] = None
        self.sockets: List[socket.socket] = []
        self._event_rate = EventRate()

    async def run(self) -> int:
        self._stopped = asyncio.Event()  # created inside the loop: Python 3.9 binds it at creation
        self.services = await build(self.settings, on_health_change=self.update_status)
        try:
            self.start()
        except BaseException:
            await self.services.close()
            raise
        await self._stopped.wait()
        return self._exit_status

    def start(self) -> None:
        """Listen, serve the application, start the timers and the signal handlers."""
        settings = self.settings
        self.sockets = listening_sockets(settings, self._env)
        try:
            app = make_app(self.ctx)
        except FileNotFoundError as exc:
            raise StartupError(str(exc)) from None
        open_files = open_files_limit()
        max_connections = connection_limit(settings.max_connections, open_files)
        log.debug("accepting up to %d connections (open-files limit %s)", max_connections,
                  open_files if open_files is not None else "unlimited")
        self.server = make_server(app, settings, max_connections, self.ctx.metrics.connections)
        self.server.add_sockets(self.sockets)
        self._start_timer(self.cleanup, settings.cleanup_interval)
        self._start_timer(self.update_status, STATUS_INTERVAL)
        if self.notifier.watchdog_seconds:
            self._start_timer(self.notifier.watchdog, self.notifier.watchdog_seconds / 2)
        self._install_signal_handlers()
        log.info("progressistad %s listening on %s; dashboard at %s; %s",
                 __version__, ", ".join(describe(s) for s in self.sockets),
                 self.dashboard_url(), self._auth_summary())
        self.services.log_notes()
        asyncio.get_running_loop().call_soon(self._announce_ready)

    def _announce_ready(self) -> None:
        """READY=1 once the loop runs: the sockets listen and the state is loaded."""
        self.notifier.ready()
        self.update_status()

    @property
    def ctx(self) -> AppContext:
        """The handlers' context; only once `run` has built the services."""
        assert self.services is not None, "the services are built by run()"
        return self.services.ctx

    async def cleanup(self) -> None:
        """One cleanup tick: the sweep of SPEC section 5, then reaping stalled dashboards, then
        the history's share (overdue runs, retention)."""
        started = time.perf_counter()
        changes = await self.ctx.service.sweep()
        self.ctx.metrics.sweep.observe(time.perf_counter() - started)
        if changes:
            log.debug("cleanup: %d stale or updated, %d removed",
                      len(changes.upserted), len(changes.removed))
        self.ctx.hub.reap()
        await self.services.after_sweep()

    def update_status(self) -> None:
        """Refresh systemd's STATUS= line (tasks, dashboards, events per second, problems)."""
        if not self.notifier.enabled or self._stopping or self.services is None:
            return
        rate = self._event_rate.per_second(self.ctx.service.events_accepted)
        self.notifier.status(status_line(len(self.ctx.service.store), len(self.ctx.hub),
                                         rate, self.services.problem()))

    def reload(self) -> None:
        """SIGHUP: re-read flags, environment and config file; apply the reloadable options."""
        if self._stopping:
            return
        self.notifier.reloading()
        try:
            new = parse_config(self._argv, self._env).settings
        except ConfigError as exc:
            log.error("reload failed, keeping the current settings: %s", exc)
        else:
            merged, ignored = reloadable_changes(self.settings, new)
            self.settings = merged
            self.ctx.apply_settings(merged)
            set_level(merged.log_level)
            self.services.reload(merged)
            log.info("reloaded: %s", self._auth_summary())
            if ignored:
                log.warning("changed options that need a restart, not applied: %s",
                            ", ".join("--" + name.replace("_", "-") for name in ignored))
        self.notifier.ready()
        self.update_status()

    def stop(self) -> None:
        """SIGTERM/SIGINT: run the ordered shutdown once."""
        if self._stopping:
            return
        self._stopping = True
        asyncio.ensure_future(self.shutdown())

    async def shutdown(self) -> None:
        """STOPPING=1, stop listening, close HTTP connections and dashboards (1001), write the
        state, stop timers."""
        log.info("stopping")
        self.notifier.stopping()
        if self.server is not None:
            self.server.stop()
            # Before the final write: a keep-alive connection left open would still get
            # events applied and acknowledged after the state was written, then lost.
            try:
                await asyncio.wait_for(self.server.close_all_connections(),
                                       CLOSE_CONNECTIONS_TIMEOUT)
            except asyncio.TimeoutError:
                log.warning("closed with HTTP requests still in flight")
        self.ctx.hub.close_all(contract.WS_CLOSE_GOING_AWAY, "server shutting down")
        if not await self.services.save():
            self._exit_status = EXIT_RUNTIME
        for timer in self._timers:
            timer.stop()
        await self.services.close()
        log.info("stopped")
        if self._stopped is not None:
            self._stopped.set()

    def dashboard_url(self) -> str:
        address = self.sockets[0].getsockname() if self.sockets else None
        if not isinstance(address, tuple):
            return f"{self.settings.base_path}/static/index.html (behind the proxy in front)"
        host, port = address[:2]
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1" if host == "0.0.0.0" else "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{port}{self.settings.base_path}/static/index.html"

    def _auth_summary(self) -> str:
        tokens = self.ctx.tokens
        if not tokens.enabled:
            return "no tokens configured: every route is open"
        return (f"tokens required: {len(self.settings.api_tokens)} read-write, "
                f"{len(self.settings.read_tokens)} read-only")

    def _start_timer(self, callback: Callable[[], None], interval_seconds: float) -> None:
        timer = tornado.ioloop.PeriodicCallback(callback, interval_seconds * 1000.0)
        timer.start()
        self._timers.append(timer)

    def _install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stop)
        loop.add_signal_handler(signal.SIGHUP, self.reload)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of `progressistad` and `progressista serve`; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    env = dict(os.environ)
    try:
        parsed = parse_config(args, env)
    except ConfigError as exc:
        print(journal_line(logging.ERROR, f"progressistad: {exc}", env, sys.stderr), file=sys.stderr)
        return EXIT_USAGE
    if parsed.print_config:
        return print_config(parsed, env)
    if parsed.import_state:
        from progressistad.cluster.state_import import run_import
        return run_import(parsed.settings, parsed.import_state)
    return serve(parsed, args, env)


def print_config(parsed: ParsedConfig, env: Mapping[str, str]) -> int:
    """`--print-config`: the options, then the notification routes (secrets redacted)."""
    try:
        routes = notifications.describe(parsed.settings)
    except RouteError as exc:
        print(journal_line(logging.ERROR, f"progressistad: {exc}", env, sys.stderr),
              file=sys.stderr)
        return EXIT_USAGE
    print("\n".join([format_config(parsed), *routes]))
    return EXIT_OK


def serve(parsed: ParsedConfig, args: Sequence[str], env: Mapping[str, str]) -> int:
    configure_logging(parsed.settings.log_level, env)
    raise_open_files_limit()
    notifier = Notifier.from_environment(env, os.getpid())
    try:
        return asyncio.run(Daemon(parsed.settings, args, env, notifier).run())
    except StartupError as exc:
        log.error("%s", exc)
        return EXIT_RUNTIME
    except RouteError as exc:  # a bad route file is a bad configuration
        log.error("%s", exc)
        return EXIT_USAGE
    except KeyboardInterrupt:  # SIGINT before the signal handlers were installed
        return EXIT_RUNTIME
