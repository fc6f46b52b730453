"""Logging to stderr: timestamps for a terminal, `<N>` syslog priorities for the journal."""

from __future__ import annotations

import logging
import os
import sys
from typing import Mapping, Optional, TextIO

SYSLOG_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}
TERMINAL_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JOURNAL_FORMAT = "<%(priority)d>%(name)s: %(message)s"


class JournalFormatter(logging.Formatter):
    """`<N>name: message`, one record per line (journald reads the prefix as the priority)."""

    def __init__(self) -> None:
        super().__init__(JOURNAL_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        record.priority = syslog_priority(record.levelno)
        text = super().format(record)
        prefix = f"<{record.priority}>"
        return text.replace("\n", "\n" + prefix)


def syslog_priority(levelno: int) -> int:
    for level in sorted(SYSLOG_PRIORITY, reverse=True):
        if levelno >= level:
            return SYSLOG_PRIORITY[level]
    return SYSLOG_PRIORITY[logging.DEBUG]


def stderr_is_journal(env: Mapping[str, str], stream: TextIO) -> bool:
    """JOURNAL_STREAM names the device and inode of our stderr (systemd.exec(5))."""
    expected = env.get("JOURNAL_STREAM", "")
    if not expected:
        return False
    try:
        stat = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return expected == f"{stat.st_dev}:{stat.st_ino}"


def journal_line(levelno: int, text: str, env: Mapping[str, str], stream: TextIO) -> str:
    """`text` with its `<N>` priority when `stream` is the journal: for lines before logging is set up."""
    if stderr_is_journal(env, stream):
        return f"<{syslog_priority(levelno)}>{text}"
    return text


def configure_logging(level: str, env: Mapping[str, str], stream: Optional[TextIO] = None) -> None:
    """One stderr handler on the root logger, formatted for the journal or a terminal."""
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    if stderr_is_journal(env, stream):
        handler.setFormatter(JournalFormatter())
    else:
        handler.setFormatter(logging.Formatter(TERMINAL_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    set_level(level)


def set_level(level: str) -> None:
    logging.getLogger().setLevel(getattr(logging, level.upper()))
