"""File operations of the state file: atomic replacement, its leftovers, moving a file aside."""

from __future__ import annotations

import errno
import glob
import os
import tempfile
import time
from typing import Iterable, Tuple


def write_atomically(path: str, chunks: Iterable[str]) -> None:
    """Write `chunks` to `path` so that a reader sees the old file or the new one, never a mix."""
    directory, name = os.path.split(path)
    prefix, suffix = _temporary_affixes(name)
    fd, temporary = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            for chunk in chunks:
                stream.write(chunk)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
    fsync_directory(directory)


def remove_leftovers(path: str) -> None:
    """Delete the temporary files of writes to `path` that a crash interrupted."""
    directory, name = os.path.split(path)
    prefix, suffix = _temporary_affixes(name)
    for leftover in glob.glob(os.path.join(glob.escape(directory),
                                           glob.escape(prefix) + "*" + glob.escape(suffix))):
        try:
            os.unlink(leftover)
        except OSError:
            pass


def _temporary_affixes(name: str) -> Tuple[str, str]:
    """Prefix and suffix of the temporary file a write of `name` goes through."""
    return f".{name}.", ".tmp"


def fsync_directory(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def move_aside(path: str, now: float) -> str:
    """Rename `path` to a new `path.corrupt-<UTC time>[-N]` name; never replaces a file."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    for attempt in range(1000):
        target = f"{path}.corrupt-{stamp}" + (f"-{attempt}" if attempt else "")
        try:
            os.link(path, target)
        except FileExistsError:
            continue
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
                raise
            if os.path.lexists(target):
                continue
            os.rename(path, target)
            return target
        os.unlink(path)
        return target
    raise OSError(errno.EEXIST, "too many files moved aside already", path)


def reason(exc: BaseException) -> str:
    """Why a file operation failed, in a few words for logs and /health."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
