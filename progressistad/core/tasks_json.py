"""Every task's served form as one JSON "tasks" object, kept in blocks of entries between
changes, so that after a change only the blocks of the tasks it touched are made again
(GET /tasks and the WebSocket snapshots read it; bench/reads.py measures it).

Tasks fall into BLOCKS blocks by the hash of their id; the order of the tasks in the object
is that of the blocks (a JSON object's order means nothing). The blocks are made when first
read and kept while they are read: a change heard more than KEEP_SECONDS after the last read
drops them, so that a daemon nobody reads from holds no second copy of its tasks' JSON.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Protocol

BLOCKS = 256
"""A power of two: a task's block is the low bits of its id's hash."""
KEEP_SECONDS = 30.0
_MASK = BLOCKS - 1


class _Changes(Protocol):
    upserted: Iterable[str]
    removed: Iterable[str]


class TasksJson:
    """The "tasks" object of `tasks` (the tasks by id, each with its `entry()`), told of every
    change to them by `note`."""

    def __init__(self, tasks: Mapping[str, Any], clock: Callable[[], float] = time.monotonic) -> None:
        self._tasks = tasks
        self._clock = clock
        self._members: Optional[List[Dict[str, None]]] = None
        """The ids of each block's tasks; None while nothing is kept."""
        self._blocks: List[Optional[bytes]] = []
        """Each block's entries joined, as UTF-8; None: to be made again."""
        self._read_at = 0.0

    def note(self, changes: _Changes) -> None:
        """The tasks `changes` names changed or went: their blocks are made again when read."""
        members = self._members
        if members is None:
            return
        if self._clock() - self._read_at > KEEP_SECONDS:
            self._members, self._blocks = None, []
            return
        blocks = self._blocks
        for task_id in changes.upserted:
            block = hash(task_id) & _MASK
            members[block][task_id] = None
            blocks[block] = None
        for task_id in changes.removed:
            block = hash(task_id) & _MASK
            members[block].pop(task_id, None)
            blocks[block] = None

    def message(self, head: bytes, tail: bytes) -> bytes:
        """`head`, the "tasks" object and `tail` as one bytes object, copied once."""
        self._read_at = self._clock()
        if self._members is None:
            self._take_all()
        blocks = self._blocks
        for index, block in enumerate(blocks):
            if block is None:
                blocks[index] = self._encoded(index)
        filled = [block for block in blocks if block]
        pieces: List[Any] = [b","] * (2 * len(filled) - 1) if filled else []
        pieces[0::2] = filled
        return b"".join([head, b"{", *pieces, b"}", tail])

    def _take_all(self) -> None:
        self._members = [{} for _ in range(BLOCKS)]
        self._blocks = [None] * BLOCKS
        for task_id in self._tasks:
            self._members[hash(task_id) & _MASK][task_id] = None

    def _encoded(self, index: int) -> bytes:
        assert self._members is not None
        members, get = self._members[index], self._tasks.get
        entries = []
        for task_id in list(members):
            task = get(task_id)
            if task is None:
                del members[task_id]
            else:
                entries.append(task.entry())
        return ",".join(entries).encode()
