"""Socket activation: the listening sockets systemd (or systemd-socket-activate) passes in.

sd_listen_fds(3): LISTEN_PID names the process they are meant for, LISTEN_FDS
how many there are, starting at file descriptor 3.
"""

from __future__ import annotations

import socket
from typing import List, Mapping

SD_LISTEN_FDS_START = 3


class ActivationError(Exception):
    """The inherited descriptors cannot be served; the message is one line."""


def inherited_sockets(env: Mapping[str, str], pid: int) -> List[socket.socket]:
    """The listening sockets passed to process `pid`, non-blocking; empty when none were."""
    if env.get("LISTEN_PID", "").strip() != str(pid):
        return []
    try:
        count = int(env.get("LISTEN_FDS", "0"))
    except ValueError:
        raise ActivationError(f"LISTEN_FDS={env.get('LISTEN_FDS')!r} is not a number") from None
    sockets = []
    for fd in range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + count):
        try:
            sock = socket.socket(fileno=fd)
        except OSError as exc:
            raise ActivationError(f"inherited file descriptor {fd} is not a socket: "
                                  f"{exc.strerror}") from None
        if sock.type != socket.SOCK_STREAM:
            raise ActivationError(f"inherited socket {fd} is not a stream socket "
                                  "(use ListenStream= in the .socket unit)")
        sock.set_inheritable(False)
        sock.setblocking(False)
        sockets.append(sock)
    return sockets


def describe(sock: socket.socket) -> str:
    """`host:port` (or the Unix path) a listening socket serves."""
    address = sock.getsockname()
    if isinstance(address, tuple):
        host, port = address[:2]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if isinstance(address, bytes):
        address = address.decode("utf-8", "replace")
    return f"unix:{address or '(unnamed)'}"
