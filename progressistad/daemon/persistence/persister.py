"""The state file kept in step with the task store: a TaskService listener writing changes."""

from __future__ import annotations

import asyncio
import errno
import os
import time
from typing import Any, Callable, Dict, Optional, Set

from progressistad.core import statefile
from progressistad.core.store import Changes, TaskStore
from progressistad.daemon.persistence import log, loading
from progressistad.daemon.persistence.health import WriteHealth
from progressistad.daemon.persistence.schedule import WriteSchedule
from progressistad.daemon.persistence.writer import StateWriter
from progressistad.web.metrics import Metrics


class StatePersister:
    """Keeps the state file in step with a TaskStore; a TaskService listener."""

    def __init__(
        self,
        path: str,
        interval: float,
        store: TaskStore,
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.time,
        on_health_change: Optional[Callable[[], None]] = None,
    ) -> None:
        self.path = os.path.abspath(path)
        self._store = store
        self._clock = clock
        self._writer = StateWriter(self.path)
        self._schedule = WriteSchedule(interval, self._start_write)
        self._health = WriteHealth(self.path, metrics, clock, on_health_change)
        self._changed: Set[str] = set()
        self._dirty = False
        self._writing: Optional[asyncio.Future] = None
        self._closed = False
        self._unmoved: Optional[str] = None
        """Why the file on disk is unusable, while it could not be moved aside yet."""
        self._loaded_forms: Optional[Dict[str, Any]] = None
        """The served forms of the tasks `load` loaded, by id, until `take_loaded_forms`."""

    def take_loaded_forms(self) -> Optional[Dict[str, Any]]:
        """The served forms `load` made, by id, once (the daemon's start primes with them);
        then forgotten, so that they are not held beside the tasks."""
        forms, self._loaded_forms = self._loaded_forms, None
        return forms

    def load(self) -> int:
        """Load the state file into the store (before serving); returns how many tasks it held."""
        loaded = loading.load(self.path, self._store, self._clock)
        self._loaded_forms = loaded.wire
        self._writer.seed(loaded.wire)
        self._unmoved = loaded.unmoved
        if loaded.error is not None:
            self._health.set_error(loaded.error)
        return loaded.count

    def on_changes(self, changes: Changes) -> None:
        """TaskService listener: remember what changed, write within the persist interval."""
        if self._closed:
            return
        self._changed |= changes.upserted
        self._changed |= changes.removed
        self._dirty = True
        self._schedule_write()

    def idle(self) -> bool:
        """Nothing waits to be written and no write is under way."""
        return not self._dirty and self._writing is None

    def _schedule_write(self) -> None:
        if not self._closed and self._writing is None:
            self._schedule.arm(self._health.failures)

    def _take_changes(self) -> Dict[str, Any]:
        """Each task changed since the last write: its entry or served form; None if removed."""
        changed: Dict[str, Any] = {}
        for task_id in self._changed:
            task = self._store.get(task_id)
            changed[task_id] = None if task is None else statefile.pending_entry(task)
        self._changed = set()
        return changed

    def _start_write(self) -> None:
        if not self._dirty or self._closed:
            return
        self._schedule.attempting()
        if not self._out_of_the_way():
            self._health.failed(OSError(errno.EACCES,
                                        self._health.error or "unreadable state file in the way"))
            self._schedule_write()
            return
        self._dirty = False
        self._writing = self._writer.write(self._take_changes(), self._clock())
        self._writing.add_done_callback(self._write_done)

    def _write_done(self, future: "asyncio.Future[float]") -> None:
        self._writing = None
        exc = future.exception()
        if exc is None:
            self._health.succeeded(future.result())
        else:
            self._dirty = True
            self._health.failed(exc)
        if self._dirty:
            self._schedule_write()

    def _out_of_the_way(self) -> bool:
        """Whether no unusable file that loading could not move aside is still in the way."""
        if self._unmoved is None:
            return True
        if not loading.moved_aside_at_last(self.path, self._unmoved, self._clock()):
            return False
        self._unmoved = None
        return True

    async def close(self) -> bool:
        """Final write of everything not yet on disk; True when the file holds the last state."""
        self._closed = True
        self._schedule.cancel()
        if self._writing is not None:
            try:
                await self._writing
            except Exception:
                pass
        saved = True
        if self._dirty and self._out_of_the_way():
            try:
                seconds = await self._writer.write(self._take_changes(), self._clock())
            except Exception as exc:
                self._health.failed(exc)
                saved = False
            else:
                self._health.succeeded(seconds)
                self._dirty = False
        elif self._dirty:
            saved = False
        self._writer.shutdown()
        if not saved:
            log.error("the final state could not be written to %s: %s",
                      self.path, self._health.error)
        return saved

    def health(self) -> Dict[str, Any]:
        """The /health report of persistence: ok unless the last write failed."""
        return self._health.report()

    def problem(self) -> Optional[str]:
        """A few words for systemd's STATUS= line when something is wrong, else None."""
        return self._health.error
