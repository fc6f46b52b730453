"""What a history backend owes its writes: runs accepted but not yet stored, bounded and
counted, and the pace at which a failing store is tried again."""

from __future__ import annotations

import logging
from typing import Any, Dict, Optional

log = logging.getLogger("progressistad.history")

QUEUE_LIMIT = 100000
"""Runs kept waiting while the store cannot take them; the newest beyond are dropped."""
WRITE_DELAY = 0.25
"""Seconds a backend waits, once runs come, for more to write in the same transaction: tasks
finishing by the thousand cost a write each this long, not one each (bench/history.py)."""
RETRY_FIRST_SECONDS = 0.5
RETRY_MOST_SECONDS = 30.0


class Backlog:
    """Counts of runs accepted (`admit`, by the loop) and stored or given up (`settle`, by the
    writer): each counter has one writer, so neither side takes a lock.

    When full, the runs offered are dropped, not the oldest waiting: those are already
    in the writer's hands, and the runs that are kept stay in the order they ended.
    """

    def __init__(self, limit: int = QUEUE_LIMIT) -> None:
        self.limit = limit
        self.admitted = 0
        self.settled = 0
        self.dropped = 0

    def __len__(self) -> int:
        return self.admitted - self.settled

    def admit(self, count: int) -> int:
        """How many of `count` runs offered fit; the rest are counted as dropped."""
        taken = max(0, min(count, self.limit - len(self)))
        self.admitted += taken
        self.dropped += count - taken
        return taken

    def settle(self, count: int) -> None:
        self.settled += count


class Faults:
    """The writer's last failure, the wait before it tries again, and the log lines they deserve."""

    def __init__(self, what: str, first: float = RETRY_FIRST_SECONDS,
                 most: float = RETRY_MOST_SECONDS) -> None:
        self.what = what
        self.first = first
        self.most = most
        self.failures = 0
        self.error: Optional[str] = None

    def failed(self, error: str) -> float:
        """Record a failure; returns the seconds to wait before the next attempt."""
        self.failures += 1
        if error != self.error:
            log.error("%s: %s; runs wait in memory and writes are retried", self.what, error)
        self.error = error
        return min(self.most, self.first * 2 ** min(self.failures - 1, 16))

    def succeeded(self) -> None:
        if self.error is not None:
            log.warning("%s: written again after %d failed attempts", self.what, self.failures)
        self.failures = 0
        self.error = None

    def health(self, backlog: Backlog, **extra: Any) -> Dict[str, Any]:
        """The /health report of a backend: ok unless its last write failed."""
        return {"ok": self.error is None, "error": self.error, "queued": len(backlog),
                "dropped": backlog.dropped, "failures": self.failures, **extra}
