"""Whether this daemon reaches Redis right now, and how a lost link is told in logs and /health."""

from __future__ import annotations

import logging
import time
from typing import Callable, Optional

from progressistad.web.auth import redact_uri

log = logging.getLogger("progressistad.cluster")

SOCKET_TIMEOUT = 3.0
"""Seconds a Redis command may take before the daemon counts Redis as lost."""


def describe(error: BaseException) -> str:
    """One line for an error from Redis or the socket under it."""
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


def safe_url(url: str) -> str:
    """`url` with any password replaced, for logs and /health."""
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest:
        credentials, _, host = rest.rpartition("@")
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user + ':' if user else ':'}***@{host}"
    return redact_uri(url)


def unreachable(url: str, error: BaseException) -> ConnectionError:
    """The one-line error a daemon or `--import-state` stops with when Redis cannot be reached."""
    return ConnectionError(f"cannot reach Redis at {safe_url(url)}: {describe(error)}")


class Link:
    """Whether this daemon currently reaches Redis, and why not."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.ok = True
        self.error: Optional[str] = None
        self.since = clock()
        self.outages = 0
        self.needs_resync = False
        """A write of ours may have gone unseen: the mirror must be reloaded, not caught up."""
        self.on_change: Callable[[], None] = lambda: None
        """Called when Redis is lost or back (the daemon refreshes systemd's STATUS=)."""

    def down(self, error: BaseException, resync: bool = False) -> None:
        self.needs_resync = self.needs_resync or resync
        if self.ok:
            self.outages += 1
            self.since = self._clock()
            log.warning("lost Redis: %s", describe(error))
            self.ok = False
            self.error = describe(error)
            self.on_change()
        self.error = describe(error)

    def up(self) -> None:
        if not self.ok:
            log.info("Redis is back after %.1fs", self._clock() - self.since)
            self.since = self._clock()
            self.ok = True
            self.error = None
            self.on_change()

    def problem(self) -> Optional[str]:
        """What /health and systemd's STATUS= line say about Redis, or None when all is well."""
        return None if self.ok else f"Redis unreachable: {self.error}"
