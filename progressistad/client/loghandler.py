"""LogHandler: a logging handler that sends each record to a bar's log tail on the dashboard."""

from __future__ import annotations

import logging
from typing import Any


class LogHandler(logging.Handler):
    """Appends every formatted record (a traceback as its lines) to `bar`'s log; a closed bar drops them."""

    def __init__(self, bar: Any, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.bar = bar

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.bar.log(self.format(record))
        except Exception:
            self.handleError(record)
