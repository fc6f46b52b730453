"""How writes of the state file fare: metrics, logs, the /health report and the STATUS= problem."""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional

from progressistad.daemon.persistence import log
from progressistad.daemon.persistence.files import reason
from progressistad.web.metrics import Metrics


class WriteHealth:
    """The outcome of the last writes; `on_change` hears when the state file turns bad or good."""

    def __init__(self, path: str, metrics: Metrics, clock: Callable[[], float],
                 on_change: Optional[Callable[[], None]] = None) -> None:
        self.path = path
        self._metrics = metrics
        self._clock = clock
        self._on_change = on_change
        self.error: Optional[str] = None
        self.failures = 0
        self.last_saved_at: Optional[float] = None

    def succeeded(self, seconds: float) -> None:
        self._metrics.persist.observe(seconds)
        self.last_saved_at = self._clock()
        if self.error is not None:
            log.warning("state file %s written again after %d failed attempts",
                        self.path, self.failures)
        self.failures = 0
        self.set_error(None)

    def failed(self, exc: BaseException) -> None:
        self._metrics.persist_failures += 1
        self.failures += 1
        message = f"cannot write the state file: {reason(exc)}"
        if message != self.error:
            log.error("%s (%s); tasks stay in memory, retrying until it works",
                      message, self.path)
        self.set_error(message)

    def set_error(self, error: Optional[str]) -> None:
        changed = error != self.error
        self.error = error
        if changed and self._on_change is not None:
            self._on_change()

    def report(self) -> Dict[str, Any]:
        """The /health report of persistence: ok unless the last write failed."""
        return {
            "ok": self.error is None,
            "saved_at": self.last_saved_at,
            "failures": self.failures,
            "error": self.error,
        }
