"""The writer thread: the one thread that writes the state file, and the entries it last wrote."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from typing import Any, Dict

from progressistad.core import statefile, wirejson
from progressistad.daemon.persistence.files import write_atomically


class StateWriter:
    """Writes the whole state file off the IOLoop, encoding again only the tasks that changed."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._entries: Dict[str, Any] = {}
        """Each task's entry as last written (`wirejson.entry`), or its served form until then."""
        self._entries_encoded = True
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="progressistad-persist")

    def seed(self, wire: Dict[str, Any]) -> None:
        """Start from the loaded tasks' served forms; the first write encodes them."""
        self._entries = wire
        self._entries_encoded = False

    def write(self, changed: Dict[str, Any], saved_at: float) -> "asyncio.Future[float]":
        """Write the file with `changed` applied, on the writer thread; resolves to its seconds."""
        return asyncio.get_running_loop().run_in_executor(
            self._executor, self._timed_write, changed, saved_at)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False)

    def _timed_write(self, changed: Dict[str, Any], saved_at: float) -> float:
        """On the writer thread: encode the changed tasks again and write every entry."""
        started = time.perf_counter()
        entries = self._entries
        if not self._entries_encoded:
            for task_id, wire in entries.items():
                entries[task_id] = wirejson.entry(task_id, wire)
            self._entries_encoded = True
        for task_id, wire in changed.items():
            if wire is None:
                entries.pop(task_id, None)
            elif isinstance(wire, str):
                entries[task_id] = wire
            else:
                entries[task_id] = wirejson.entry(task_id, wire)
        write_atomically(self.path, statefile.encode_chunks(entries.values(), saved_at))
        return time.perf_counter() - started
