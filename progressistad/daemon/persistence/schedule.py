"""When the next state-file write may start: one per persist interval, backing off on failures."""

from __future__ import annotations

import asyncio
import time
from typing import Callable, Optional

RETRY_MAX_SECONDS = 30.0
"""Longest wait between two attempts while writes keep failing."""


def pause(interval: float, failures: int) -> float:
    """Least time between the starts of two writes, after `failures` failed ones in a row."""
    if not failures:
        return interval
    return min(RETRY_MAX_SECONDS, max(interval, 1.0) * 2 ** min(failures - 1, 8))


class WriteSchedule:
    """At most one pending start of a write, no sooner than `pause` after the last attempt."""

    def __init__(self, interval: float, start_write: Callable[[], None]) -> None:
        self.interval = interval
        self._start_write = start_write
        self._timer: Optional[asyncio.TimerHandle] = None
        self._last_attempt = float("-inf")

    def arm(self, failures: int) -> None:
        """Have the next write start once its pause is over, unless one is pending already."""
        if self._timer is not None:
            return
        delay = max(0.0, self._last_attempt + pause(self.interval, failures) - time.monotonic())
        self._timer = asyncio.get_running_loop().call_later(delay, self._fire)

    def attempting(self) -> None:
        """A write starts now: the next one waits its pause from here."""
        self._last_attempt = time.monotonic()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _fire(self) -> None:
        self._timer = None
        self._start_write()
