"""The log lines of one task waiting for delivery: kept in order, bounded, the oldest dropped first.

Unlike a bar's state, which the sender reads afresh each time, lines are
never coalesced: each one stays queued until a POST carrying it succeeds.
The caller (the sender) holds the lock; nothing here is thread-safe alone.
"""

from __future__ import annotations

from collections import deque
from typing import Deque, List, Tuple

from progressistad import contract

LINES_PER_TASK = contract.LOG_TAIL_LINES
"""The daemon keeps a task's last LOG_TAIL_LINES lines: older queued lines could never show."""


class LogQueue:
    """Queued lines with sequence numbers, so a delivery acknowledges exactly what it carried."""

    __slots__ = ("lines", "next_seq", "dropped")

    def __init__(self) -> None:
        self.lines: Deque[Tuple[int, str]] = deque()
        self.next_seq = 0
        self.dropped = 0

    def __len__(self) -> int:
        return len(self.lines)

    def add(self, lines: List[str], room: int) -> Tuple[int, int]:
        """Queue `lines`; `room`: how many more the process may hold. (change in lines held, dropped)."""
        before = len(self.lines)
        for line in lines:
            self.lines.append((self.next_seq, line))
            self.next_seq += 1
        limit = min(LINES_PER_TASK, before + max(room, 0))
        dropped = 0
        while len(self.lines) > limit:
            self.lines.popleft()
            dropped += 1
        self.dropped += dropped
        return len(self.lines) - before, dropped

    def peek(self) -> List[Tuple[int, str]]:
        """Every queued (sequence number, line), oldest first; they stay queued until acknowledged."""
        return list(self.lines)

    def acknowledge(self, upto: int) -> int:
        """Forget the lines up to sequence number `upto`, delivered; how many were forgotten."""
        removed = 0
        while self.lines and self.lines[0][0] <= upto:
            self.lines.popleft()
            removed += 1
        return removed

    def clear(self) -> int:
        """Forget every line; how many there were."""
        removed = len(self.lines)
        self.lines.clear()
        return removed
