"""The per-job figures /metrics shows, read from the history at most every few seconds.

A scrape waits for a fresh read only when the last one is older than
`REFRESH_SECONDS`, and never longer than `READ_TIMEOUT`: scrapes in between,
and scrapes while the history cannot be read, get the last figures read.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable, Dict, Optional

from progressistad.history.query import HistoryUnavailable
from progressistad.history.service import History

log = logging.getLogger("progressistad.history")

REFRESH_SECONDS = 5.0
READ_TIMEOUT = 2.0
"""Seconds a scrape waits for the history before it is answered with the last figures."""
NO_FIGURES: Dict[str, Any] = {"jobs": {}, "more": False}


class JobFigures:
    """The first `max_jobs` jobs by name with their figures (`History.job_metrics`), cached."""

    def __init__(self, history: History, max_jobs: int,
                 clock: Callable[[], float] = time.monotonic,
                 refresh_seconds: float = REFRESH_SECONDS,
                 read_timeout: float = READ_TIMEOUT) -> None:
        self.history = history
        self.max_jobs = max_jobs
        self._clock = clock
        self.refresh_seconds = refresh_seconds
        self.read_timeout = read_timeout
        self.figures: Dict[str, Any] = NO_FIGURES
        self._read_at = float("-inf")
        self._reading: Optional["asyncio.Future[None]"] = None

    async def current(self) -> Dict[str, Any]:
        """`{"jobs": {job: figures}, "more": bool}`, read again when it is old."""
        if self.max_jobs <= 0:
            return NO_FIGURES
        if self._reading is None and self._clock() - self._read_at >= self.refresh_seconds:
            self._reading = asyncio.ensure_future(self._read())
        if self._reading is not None:
            await asyncio.wait([self._reading], timeout=self.read_timeout)
        return self.figures

    async def _read(self) -> None:
        try:
            self.figures = await self.history.job_metrics(self.max_jobs)
        except HistoryUnavailable as exc:
            log.debug("/metrics shows the last figures read: %s", exc)
        finally:
            self._read_at = self._clock()
            self._reading = None
