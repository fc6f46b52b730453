"""The HTTP server: tornado's, with an accept loop of its own that bounds the connections.

Past `max_connections` a new connection is answered 503 and closed. When accept()
fails for want of descriptors the listening sockets are left alone for a moment,
instead of being retried at once (which spins the loop and floods the log), and
the pending connections wait in the listen backlog until descriptors are free.
"""

from __future__ import annotations

import errno
import json
import logging
import socket
import time
from typing import Any, Callable, List, Optional

import tornado.httpserver
import tornado.httputil
import tornado.ioloop
import tornado.iostream

from progressistad.daemon.config import Settings
from progressistad.web.base import SECURITY_HEADERS
from progressistad.web.linger import Lingerer
from progressistad.web.metrics import ConnectionStats

log = logging.getLogger("progressistad")

ACCEPT_BATCH = 128
"""Connections accepted per wakeup at most, as tornado does, so that other work is not starved."""
OUT_OF_DESCRIPTORS = frozenset((errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM))
PEER_GONE = frozenset((errno.EPROTO, errno.ENETDOWN, errno.ENETUNREACH, errno.EHOSTDOWN,
                       errno.EHOSTUNREACH, errno.ENOPROTOOPT, errno.EOPNOTSUPP, errno.EPERM))
"""accept(2) on Linux: the pending connection failed (or a firewall refused it); take the next."""
PAUSE_FIRST = 0.1
PAUSE_MAX = 1.0
"""Seconds accepting pauses when out of descriptors: doubling from the first while it lasts."""
LOG_INTERVAL = 10
"""Seconds between two log lines about refusing connections, or about running out of descriptors."""
RETRY_AFTER_SECONDS = 1
REFUSALS_DRAINING = 16
"""Refused connections drained at once at most; they hold descriptors beyond the limit."""
REFUSAL_DRAIN_SECONDS = 1.0
REFUSAL_DRAIN_BYTES = 64 * 1024
BODY_DRAIN_BYTES = 64 * 1024 * 1024
"""Most bytes of a refused body read and discarded so that its sender reads the 413."""


class ServedStream(tornado.iostream.IOStream):
    """A client's connection: reports when its descriptor is gone, and can drain before closing."""

    def __init__(self, sock: socket.socket, on_closed: Callable[[], None], lingerer: Lingerer,
                 **kwargs: Any) -> None:
        self._on_closed = on_closed
        self._lingerer = lingerer
        self._drain = False
        super().__init__(sock, **kwargs)

    def drain_on_close(self) -> None:
        self._drain = True

    def close_fd(self) -> None:
        sock, self.socket = self.socket, None
        if self._drain:
            self._lingerer.close(sock, self._on_closed)
        else:
            sock.close()
            self._on_closed()


def drain_before_close(request: tornado.httputil.HTTPServerRequest) -> None:
    """Once the answer is written, read and discard what the client still sends, then close."""
    stream = getattr(request.connection, "stream", None)
    if isinstance(stream, ServedStream):
        stream.drain_on_close()


def refusal(max_connections: int) -> bytes:
    """The whole answer to a connection over the limit: 503, Retry-After, Connection: close."""
    body = json.dumps({"error": f"too many connections: at most {max_connections}; try again "
                                "later", "max_connections": max_connections}).encode()
    headers = {"Content-Type": "application/json", "Content-Length": str(len(body)),
               "Retry-After": str(RETRY_AFTER_SECONDS), "Connection": "close",
               "Cache-Control": "no-store", **SECURITY_HEADERS}
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return f"HTTP/1.1 503 Service Unavailable\r\n{head}\r\n".encode() + body


class GatewayServer(tornado.httpserver.HTTPServer):
    """HTTPServer that accepts on its own: a connection limit, pauses when out of descriptors."""

    def initialize(self, request_callback: Any, *, max_connections: int, body_timeout: float,
                   stats: Optional[ConnectionStats] = None, **kwargs: Any) -> None:
        super().initialize(request_callback, body_timeout=body_timeout, **kwargs)
        self.max_connections = max_connections
        self.stats = stats if stats is not None else ConnectionStats()
        self.stats.limit = max_connections
        self._refusal = refusal(max_connections)
        self._listeners: List[_Listener] = []
        self._bodies = Lingerer(BODY_DRAIN_BYTES, body_timeout)
        self._refusals = Lingerer(REFUSAL_DRAIN_BYTES, REFUSAL_DRAIN_SECONDS, REFUSALS_DRAINING)
        self._said_at = {"refused": float("-inf"), "paused": float("-inf")}

    def add_sockets(self, sockets: Any) -> None:
        for sock in sockets:
            listener = _Listener(sock, self)
            listener.start()
            self._listeners.append(listener)

    def stop(self) -> None:
        for listener in self._listeners:
            listener.stop()
            listener.sock.close()
        self._listeners = []
        super().stop()

    async def close_all_connections(self) -> None:
        await super().close_all_connections()
        self._bodies.close_all()
        self._refusals.close_all()

    def serve(self, connection: socket.socket, address: Any) -> None:
        """One accepted connection: served, or refused when the limit is reached."""
        connection.setblocking(False)
        if self.stats.open >= self.max_connections:
            self._refuse(connection)
            return
        self.stats.open += 1
        self.stats.accepted += 1
        try:
            stream = ServedStream(connection, self._released, self._bodies,
                                  max_buffer_size=self.max_buffer_size,
                                  read_chunk_size=self.read_chunk_size)
        except Exception:
            connection.close()
            self._released()
            raise
        self.handle_stream(stream, address)

    def _released(self) -> None:
        self.stats.open -= 1

    def _refuse(self, connection: socket.socket) -> None:
        self.stats.refused += 1
        if self._time_to_say("refused"):
            log.warning("%d connections open, the most --max-connections allows: new ones are "
                        "answered 503 (%d so far; said at most every %d s)", self.stats.open,
                        self.stats.refused, LOG_INTERVAL)
        try:
            connection.send(self._refusal)
        except OSError:
            connection.close()
            return
        self._refusals.close(connection)

    def out_of_descriptors(self, error: OSError, pause: float) -> None:
        """Count one pause; say so at most once per LOG_INTERVAL."""
        self.stats.accept_pauses += 1
        if not self._time_to_say("paused"):
            return
        log.warning("cannot accept connections: %s, with %d open; accepting again in %.1f s "
                    "(pause %d; said at most every %d s); lower --max-connections or raise the "
                    "open-files limit (LimitNOFILE=)", error.strerror, self.stats.open, pause,
                    self.stats.accept_pauses, LOG_INTERVAL)

    def _time_to_say(self, what: str) -> bool:
        """Whether a line about `what` may be logged now: at most one per LOG_INTERVAL."""
        now = time.monotonic()
        if now - self._said_at[what] < LOG_INTERVAL:
            return False
        self._said_at[what] = now
        return True


class _Listener:
    """One listening socket's accept handler, which steps aside while descriptors are short."""

    def __init__(self, sock: socket.socket, server: GatewayServer) -> None:
        self.sock = sock
        self.server = server
        self.pause = PAUSE_FIRST
        self._loop = tornado.ioloop.IOLoop.current()
        self._resume: Optional[object] = None
        self._stopped = False

    def start(self) -> None:
        self._resume = None
        self._loop.add_handler(self.sock, self._ready, tornado.ioloop.IOLoop.READ)

    def stop(self) -> None:
        self._stopped = True
        if self._resume is not None:
            self._loop.remove_timeout(self._resume)
            self._resume = None
        else:
            self._loop.remove_handler(self.sock)

    def _ready(self, fd: Any, events: int) -> None:
        for _ in range(ACCEPT_BATCH):
            if self._stopped:
                return
            try:
                connection, address = self.sock.accept()
            except BlockingIOError:
                return
            except ConnectionAbortedError:
                continue
            except OSError as error:
                if error.errno in PEER_GONE:
                    continue
                if error.errno not in OUT_OF_DESCRIPTORS:
                    raise
                self._step_aside(error)
                return
            self.pause = PAUSE_FIRST
            self.server.serve(connection, address)

    def _step_aside(self, error: OSError) -> None:
        self._loop.remove_handler(self.sock)
        self._resume = self._loop.call_later(self.pause, self.start)
        self.server.out_of_descriptors(error, self.pause)
        self.pause = min(PAUSE_MAX, self.pause * 2)


def make_server(app: Any, settings: Settings, max_connections: int,
                stats: Optional[ConnectionStats] = None) -> GatewayServer:
    """The daemon's HTTP server for `app`, with the timeouts and limits of `settings`."""
    return GatewayServer(
        app,
        max_connections=max_connections,
        stats=stats,
        xheaders=settings.trust_proxy,
        # Above --max-body-bytes, so that the handler, not tornado, refuses a body (413, JSON).
        max_body_size=max(2 * settings.max_body_bytes, 64 * 1024),
        idle_connection_timeout=settings.idle_connection_timeout,
        body_timeout=settings.body_timeout,
    )
