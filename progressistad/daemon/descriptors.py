"""Open files: the soft limit raised to the hard one, and the connections it leaves room for."""

from __future__ import annotations

import logging
import resource
from typing import Optional

log = logging.getLogger("progressistad")

RESERVED_MIN = 64
RESERVED_SHARE = 8
"""Of the open-files limit, an eighth (at least RESERVED_MIN) is kept for the daemon's own
descriptors: listening sockets, the state file and its temporary copy, the history database,
Redis connections, notification deliveries and refused connections being drained."""
UNLIMITED_CONNECTIONS = 1 << 30


def raise_open_files_limit(getrlimit=resource.getrlimit, setrlimit=resource.setrlimit) -> None:
    """Soft RLIMIT_NOFILE up to the hard one: each client and dashboard holds a descriptor."""
    soft, hard = getrlimit(resource.RLIMIT_NOFILE)
    if soft == hard:
        return
    try:
        setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (OSError, ValueError) as exc:
        log.debug("open files: keeping the soft limit %d (hard %d): %s", soft, hard, exc)
        return
    log.debug("open files: soft limit raised from %d to the hard limit %d", soft, hard)


def open_files_limit(getrlimit=resource.getrlimit) -> Optional[int]:
    """The soft RLIMIT_NOFILE now, None when unlimited."""
    soft, _ = getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


def reserved(open_files: int) -> int:
    """Descriptors kept for the daemon's own files and outbound sockets under `open_files`."""
    return max(RESERVED_MIN, open_files // RESERVED_SHARE)


def connection_limit(configured: int, open_files: Optional[int]) -> int:
    """--max-connections, or for 0 what the open-files limit leaves once `reserved` is kept."""
    if open_files is None:
        return configured or UNLIMITED_CONNECTIONS
    room = max(1, open_files - reserved(open_files))
    if configured > room:
        log.warning("--max-connections %d is more than the open-files limit %d leaves room for "
                    "(%d, keeping %d for the daemon's own): once descriptors run out, new "
                    "connections wait instead of being refused", configured, open_files, room,
                    reserved(open_files))
    return configured or room
