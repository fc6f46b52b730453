"""`progressista pipe`: copy stdin to stdout like pv, reporting bytes or lines as a task."""

from __future__ import annotations

import os
from typing import Any, Optional

from progressistad.client.remote import RemoteTqdm

CHUNK = 1 << 20


def copy(src: int, dst: int, bar: Any, lines: bool) -> None:
    """Copy until end of input, counting into `bar`; large reads keep it near `cat` speed."""
    read, update = os.read, bar.update
    while True:
        chunk = read(src, CHUNK)
        if not chunk:
            return
        _write_all(dst, chunk)
        update(chunk.count(b"\n") if lines else len(chunk))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def run_pipe(task_id: Optional[str], desc: Optional[str], total: Optional[float], lines: bool,
             quiet: bool, remote: dict, src: int = 0, dst: int = 1) -> int:
    """Copy src to dst with a bar on stderr (when it is a terminal); the exit status."""
    unit = "line" if lines else "B"
    bar = RemoteTqdm(total=total, desc=desc or ("lines" if lines else "bytes"), unit=unit,
                     unit_scale=not lines, unit_divisor=1024, task_id=task_id,
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
