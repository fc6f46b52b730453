"""The daemon: build the services once, bind, run the timers, handle signals, stop in order."""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import socket
import sys
import time
from typing import List, Optional, Sequence

import tornado.httpserver
import tornado.ioloop
import tornado.netutil
import tornado.web

from progressistad import __version__, contract
from progressistad.app import make_app
from progressistad.config import ConfigError, Settings, load_settings
from progressistad.context import AppContext, sweep_policy
from progressistad.hub import Hub
from progressistad.metrics import Metrics
from progressistad.service import TaskService
from progressistad.store import TaskStore

log = logging.getLogger("progressistad")

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_USAGE = 2

IDLE_CONNECTION_TIMEOUT = 75.0
"""Seconds a keep-alive connection may sit idle; longer than Caddy's and browsers' pools."""
BODY_TIMEOUT = 30.0
"""Seconds a client may take to send a request body."""


class StartupError(Exception):
    """The daemon cannot start (port taken, address unavailable); the message is one line."""


def build_context(settings: Settings, clock=time.time) -> AppContext:
    """Store, service, hub and metrics for one daemon, wired together."""
    store = TaskStore(max_tasks=settings.max_tasks)
    service = TaskService(store, clock, sweep_policy(settings))
    loop = tornado.ioloop.IOLoop.current()
    hub = Hub(
        store,
        interval=settings.broadcast_interval,
        stall_timeout=settings.ws_stall_timeout,
        clock=time.monotonic,
        schedule=loop.call_later,
        perf_clock=time.perf_counter,
    )
    service.add_listener(hub.publish)
    return AppContext(settings, service, hub, clock, Metrics())


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


class Daemon:
    """One running progressistad: its server, timers and shutdown sequence."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._stopped = asyncio.Event()
        self._timers: List[tornado.ioloop.PeriodicCallback] = []
        self.server: Optional[tornado.httpserver.HTTPServer] = None
        self.sockets: List[socket.socket] = []

    async def run(self) -> int:
        self.start()
        await self._stopped.wait()
        return EXIT_OK

    def start(self) -> None:
        settings = self.settings
        self.ctx = build_context(settings)
        self.app = make_app(self.ctx)
        self.sockets = bind(settings)
        self.server = tornado.httpserver.HTTPServer(
            self.app,
            xheaders=settings.trust_proxy,
            max_body_size=max(2 * settings.max_body_bytes, 64 * 1024),
            idle_connection_timeout=IDLE_CONNECTION_TIMEOUT,
            body_timeout=BODY_TIMEOUT,
        )
        self.server.add_sockets(self.sockets)
        self._start_timer(self.cleanup, settings.cleanup_interval)
        self._install_signal_handlers()
        log.info("progressistad %s listening on %s; dashboard at %s",
                 __version__, self.listen_address(), self.dashboard_url())

    def cleanup(self) -> None:
        """One cleanup tick: the sweep of SPEC section 5, then reaping stalled dashboards."""
        started = time.perf_counter()
        changes = self.ctx.service.sweep()
        self.ctx.metrics.sweep.observe(time.perf_counter() - started)
        if changes:
            log.debug("cleanup: %d stale or updated, %d removed",
                      len(changes.upserted), len(changes.removed))
        self.ctx.hub.reap()

    def stop(self) -> None:
        """Ordered shutdown: stop listening, close dashboards with 1001, stop timers."""
        if self._stopped.is_set():
            return
        log.info("stopping")
        if self.server is not None:
            self.server.stop()
        self.ctx.hub.close_all(contract.WS_CLOSE_GOING_AWAY, "server shutting down")
        for timer in self._timers:
            timer.stop()
        self._stopped.set()

    def listen_address(self) -> str:
        host, port = self.sockets[0].getsockname()[:2]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def dashboard_url(self) -> str:
        host, port = self.sockets[0].getsockname()[:2]
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1" if host == "0.0.0.0" else "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{port}{self.settings.base_path}/static/index.html"

    def _start_timer(self, callback, interval_seconds: float) -> None:
        timer = tornado.ioloop.PeriodicCallback(callback, interval_seconds * 1000.0)
        timer.start()
        self._timers.append(timer)

    def _install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stop)


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of `progressistad` and `progressista serve`; returns the exit status."""
    try:
        settings = load_settings(sys.argv[1:] if argv is None else argv)
    except ConfigError as exc:
        print(f"progressistad: {exc}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(settings.log_level)
    try:
        return asyncio.run(Daemon(settings).run())
    except StartupError as exc:
        log.error("%s", exc)
        return EXIT_RUNTIME
