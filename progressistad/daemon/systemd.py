"""systemd's service protocol: sd_notify messages and the watchdog, silent outside systemd.

The environment systemd hands the daemon (NOTIFY_SOCKET, WATCHDOG_USEC,
WATCHDOG_PID) is read once, from the mapping given at start.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Mapping, Optional

log = logging.getLogger("progressistad.notify")


class Notifier:
    """Sends sd_notify states through sdnotify; does nothing when NOTIFY_SOCKET is unset."""

    def __init__(self, sender: Optional[Any] = None, watchdog_seconds: Optional[float] = None) -> None:
        self._sender = sender
        self.watchdog_seconds = watchdog_seconds
        """WATCHDOG_USEC in seconds when the watchdog is meant for this process, else None."""
        self._last_status: Optional[str] = None

    @classmethod
    def from_environment(cls, env: Mapping[str, str], pid: int) -> "Notifier":
        sender = None
        if env.get("NOTIFY_SOCKET"):
            import sdnotify

            sender = sdnotify.SystemdNotifier()
        return cls(sender, watchdog_interval(env, pid) if sender is not None else None)

    @property
    def enabled(self) -> bool:
        return self._sender is not None

    def send(self, *assignments: str) -> None:
        if self._sender is not None:
            self._sender.notify("\n".join(assignments))

    def ready(self) -> None:
        self.send("READY=1")

    def reloading(self) -> None:
        self.send("RELOADING=1", f"MONOTONIC_USEC={monotonic_usec()}")

    def stopping(self) -> None:
        self.send("STOPPING=1")

    def watchdog(self) -> None:
        self.send("WATCHDOG=1")

    def status(self, text: str) -> None:
        """STATUS=text, sent only when it differs from the last one."""
        line = " ".join(text.split())
        if line != self._last_status:
            self._last_status = line
            self.send(f"STATUS={line}")


def watchdog_interval(env: Mapping[str, str], pid: int) -> Optional[float]:
    """WATCHDOG_USEC in seconds when it applies to process `pid` (WATCHDOG_PID unset or ours)."""
    raw_usec = env.get("WATCHDOG_USEC", "")
    raw_pid = env.get("WATCHDOG_PID", "")
    if not raw_usec:
        return None
    if raw_pid and raw_pid.strip() != str(pid):
        return None
    try:
        usec = int(raw_usec)
    except ValueError:
        log.warning("ignoring WATCHDOG_USEC=%r: not a number of microseconds", raw_usec)
        return None
    return usec / 1e6 if usec > 0 else None


def monotonic_usec() -> int:
    """CLOCK_MONOTONIC in microseconds, as systemd wants it with RELOADING=1."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


class EventRate:
    """Events per second between two readings of a running counter."""

    def __init__(self, clock=time.monotonic) -> None:
        self._clock = clock
        self._last_count: Optional[int] = None
        self._last_time = clock()

    def per_second(self, count: int) -> float:
        now = self._clock()
        previous, self._last_count = self._last_count, count
        elapsed, self._last_time = now - self._last_time, now
        if previous is None or elapsed <= 0:
            return 0.0
        return max(0, count - previous) / elapsed


def status_line(tasks: int, dashboards: int, events_per_second: float,
                problem: Optional[str] = None) -> str:
    """The one-line STATUS= summary: tasks, dashboards, events per second, any problem."""
    line = (f"{tasks} task{'s' if tasks != 1 else ''}, {dashboards} "
            f"dashboard{'s' if dashboards != 1 else ''}, {events_per_second:.1f} events/s")
    return f"{line}; {problem}" if problem else line
