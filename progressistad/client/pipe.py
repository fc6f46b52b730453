"""`progressista pipe`: copy stdin to stdout like pv, reporting bytes or lines as a task."""

from __future__ import annotations

import errno
import io
import os
from typing import Any, Optional

from progressistad.client import jobs
from progressistad.client.remote import RemoteTqdm

CHUNK = 1 << 20


def copy(src: int, dst: int, bar: Any, lines: bool) -> None:
    """Copy until end of input, counting into `bar`, at about `cat` speed."""
    if not lines and _splice(src, dst, bar):
        return
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    reader = io.FileIO(src, "rb", closefd=False)
    update = bar.update
    while True:
        size = reader.readinto(buffer)
        if not size:
            return
        write_all(dst, view[:size])
        update(buffer.count(b"\n", 0, size) if lines else size)


def _splice(src: int, dst: int, bar: Any) -> bool:
    """Move bytes kernel-side (Linux, Python 3.10+, a pipe at one end); False if it cannot."""
    splice = getattr(os, "splice", None)
    if splice is None:
        return False
    update = bar.update
    try:
        moved = splice(src, dst, CHUNK)
    except OSError as error:
        if error.errno in (errno.EINVAL, errno.ENOSYS, errno.EBADF):
            return False
        raise
    while moved:
        update(moved)
        moved = splice(src, dst, CHUNK)
    return True


def write_all(fd: int, data: memoryview) -> None:
    """Write every byte of `data` to `fd`, however many writes it takes."""
    while data:
        data = data[os.write(fd, data):]


def run_pipe(task_id: Optional[str], desc: Optional[str], total: Optional[float], lines: bool,
             quiet: bool, remote: dict, src: int = 0, dst: int = 1) -> int:
    """Copy src to dst with a bar on stderr (when it is a terminal); the exit status."""
    unit = "line" if lines else "B"
    desc = desc or ("lines" if lines else "bytes")
    # The program is this command, not the `progressista` that runs it.
    meta = None if task_id else {"job": jobs.bar_job("pipe", desc, 1)}
    bar = RemoteTqdm(total=total, desc=desc, unit=unit, unit_scale=not lines,
                     unit_divisor=1024, task_id=task_id, meta=meta,
                     disable=True if quiet else None, **remote)
    try:
        copy(src, dst, bar, lines)
    except BrokenPipeError:
        bar.remote_fail()
        return 1
    except KeyboardInterrupt:
        bar.remote_fail()
        return 130
    bar.close()
    return 0


def size_of(path: str) -> int:
    """The byte size of `path` (for --size-from); OSError when it cannot be read."""
    return os.stat(path).st_size
