"""Lingering close: read and discard what a client still sends, then close, so it reads our answer.

Closing a socket with unread input makes the kernel reset the connection, and a
client still sending its body then gets "connection reset by peer" instead of
the answer already written to it. So, as nginx's lingering close does, the
socket is half-closed (our side is done) and drained for a bounded time and
number of bytes before it is closed for good.
"""

from __future__ import annotations

import socket
from typing import Callable, Dict, Optional, Tuple

import tornado.ioloop

READ_CHUNK = 64 * 1024


class _Draining:
    __slots__ = ("sock", "left", "timeout", "on_closed")

    def __init__(self, sock: socket.socket, left: int, timeout: object,
                 on_closed: Optional[Callable[[], None]]) -> None:
        self.sock = sock
        self.left = left
        self.timeout = timeout
        self.on_closed = on_closed


class Lingerer:
    """Holds closing sockets, draining each for at most `max_seconds` and `max_bytes`."""

    def __init__(self, max_bytes: int, max_seconds: float,
                 max_sockets: Optional[int] = None) -> None:
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds
        self.max_sockets = max_sockets
        """At most this many at once (None: no bound); one more is closed without draining."""
        self._draining: Dict[int, _Draining] = {}

    def __len__(self) -> int:
        return len(self._draining)

    def close(self, sock: socket.socket, on_closed: Optional[Callable[[], None]] = None) -> None:
        """Half-close `sock`, its answer written, and drain it; `on_closed` once it is closed."""
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:  # the peer is already gone: nothing left to protect
            _close(sock, on_closed)
            return
        if self.max_sockets is not None and len(self._draining) >= self.max_sockets:
            _discard_waiting(sock, READ_CHUNK)
            _close(sock, on_closed)
            return
        loop = tornado.ioloop.IOLoop.current()
        fd = sock.fileno()
        timeout = loop.call_later(self.max_seconds, lambda: self._finish(fd))
        self._draining[fd] = _Draining(sock, self.max_bytes, timeout, on_closed)
        loop.add_handler(fd, self._readable, tornado.ioloop.IOLoop.READ)

    def close_all(self) -> None:
        """Stop draining: close every socket now."""
        for fd in list(self._draining):
            self._finish(fd)

    def _readable(self, fd: int, events: int) -> None:
        draining = self._draining.get(fd)
        if draining is None:
            return
        read, ended = _discard_waiting(draining.sock, draining.left)
        draining.left -= read
        if ended or draining.left <= 0:
            self._finish(fd)

    def _finish(self, fd: int) -> None:
        draining = self._draining.pop(fd, None)
        if draining is None:
            return
        loop = tornado.ioloop.IOLoop.current()
        loop.remove_timeout(draining.timeout)
        loop.remove_handler(fd)
        _close(draining.sock, draining.on_closed)


def _discard_waiting(sock: socket.socket, budget: int) -> Tuple[int, bool]:
    """Read and drop what has arrived, up to `budget` bytes: (bytes read, whether peer is done)."""
    read = 0
    while read < budget:
        try:
            data = sock.recv(min(READ_CHUNK, budget - read))
        except (BlockingIOError, InterruptedError):
            return read, False
        except OSError:  # reset: nothing more will come
            return read, True
        if not data:
            return read, True
        read += len(data)
    return read, False


def _close(sock: socket.socket, on_closed: Optional[Callable[[], None]]) -> None:
    sock.close()
    if on_closed is not None:
        on_closed()
