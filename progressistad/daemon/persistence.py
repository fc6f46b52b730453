"""The state file: loaded at start, kept in step with the task store, written at stop.

Writes are debounced (at most one per persist interval), atomic (temporary
file in the same directory, fsync, rename, fsync of the directory), mode 0600,
and done by one worker thread, which encodes again only the tasks that changed
(taking the entries a snapshot already made). A failed write (disk full,
read-only directory) keeps the state in memory, is logged once, reported in
/health and retried until the disk takes it again. A file that cannot be
parsed is moved aside, never overwritten.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import gc
import glob
import logging
import os
import tempfile
import time
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Set

from progressistad.core import statefile, wirejson
from progressistad.web.metrics import Metrics
from progressistad.core.store import Changes, Task, TaskStore

log = logging.getLogger("progressistad.persistence")

RETRY_MAX_SECONDS = 30.0
"""Longest wait between two attempts while writes keep failing."""


class StorageError(Exception):
    """The storage path cannot be used at all (it is a directory); the message is one line."""


def write_atomically(path: str, chunks: Iterable[str]) -> None:
    """Write `chunks` to `path` so that a reader sees the old file or the new one, never a mix."""
    directory, name = os.path.split(path)
    fd, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
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


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic GC: loading a large file makes only acyclic objects, and its
    repeated passes over them would otherwise cost about a third of the load time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


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
        self.interval = interval
        self._store = store
        self._metrics = metrics
        self._clock = clock
        self._on_health_change = on_health_change
        self._entries: Dict[str, Any] = {}
        """Every task's entry in the file as last written (`wirejson.entry`); after a
        load, served forms until the first write encodes them. Only the writer thread writes it."""
        self._entries_encoded = True
        self._changed: Set[str] = set()
        self._dirty = False
        self._timer: Optional[asyncio.TimerHandle] = None
        self._writing: Optional[asyncio.Future] = None
        self._last_attempt = float("-inf")
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="progressistad-persist")
        self._closed = False
        self._unmoved_reason: Optional[str] = None
        """Why the file on disk is unreadable while it could not yet be moved aside."""
        self.error: Optional[str] = None
        self.failures = 0
        self.last_saved_at: Optional[float] = None

    # ---- loading

    def load(self) -> int:
        """Load the state file into the store (before serving); returns how many tasks it held."""
        if os.path.isdir(self.path):
            raise StorageError(f"--storage-path {self.path} is a directory, not a file")
        self._prepare_directory()
        try:
            with open(self.path, "rb") as stream:
                raw = stream.read()
        except FileNotFoundError:
            log.info("no state file at %s yet; starting with no tasks", self.path)
            return 0
        except OSError as exc:
            self._set_aside(f"cannot read it: {_reason(exc)}")
            return 0
        with _collector_paused():
            return self._restore(raw)

    def _restore(self, raw: bytes) -> int:
        """Decode the file's bytes into the store; with the cyclic GC paused by the caller."""
        try:
            decoded = statefile.decode(raw, self._clock())
        except statefile.StateFileError as exc:
            self._set_aside(str(exc))
            return 0
        if decoded.skipped:
            log.warning("state file %s: skipped %d entries that are not tasks (first: %r)",
                        self.path, len(decoded.skipped), decoded.skipped[0])
        tasks = self._within_limit(decoded.tasks)
        self._store.load(tasks)
        self._entries = decoded.wire if tasks is decoded.tasks else {
            task.task_id: decoded.wire[task.task_id] for task in tasks}
        self._entries_encoded = False
        # Long-lived from here on: frozen before the collector runs again, it never scans
        # them (its first pass over the young objects alone took 47 ms at 100,000 tasks).
        gc.freeze()
        log.info("loaded %d tasks from %s", len(tasks), self.path)
        return len(tasks)

    def _prepare_directory(self) -> None:
        directory = os.path.dirname(self.path)
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
        except OSError as exc:
            log.warning("cannot create %s: %s; writes will be retried", directory, _reason(exc))
            return
        name = os.path.basename(self.path)
        for leftover in glob.glob(os.path.join(glob.escape(directory), f".{glob.escape(name)}.*.tmp")):
            try:
                os.unlink(leftover)
            except OSError:
                pass

    def _within_limit(self, tasks: List[Task]) -> List[Task]:
        limit = self._store.max_tasks
        if len(tasks) <= limit:
            return tasks
        tasks = sorted(tasks, key=lambda task: task.updated_at)
        log.warning("state file %s holds %d tasks, more than --max-tasks %d: keeping the %d most "
                    "recently updated", self.path, len(tasks), limit, limit)
        return tasks[-limit:]

    def _set_aside(self, reason: str) -> None:
        try:
            target = move_aside(self.path, self._clock())
        except OSError as exc:
            self._unmoved_reason = reason
            self._set_error(f"unreadable state file could not be moved aside: {_reason(exc)}")
            log.error("state file %s is unusable (%s) and could not be moved aside (%s): starting "
                      "with no tasks; it will not be overwritten", self.path, reason, _reason(exc))
            return
        log.error("state file %s is unusable (%s): moved it to %s, starting with no tasks",
                  self.path, reason, target)

    # ---- keeping the file in step

    def on_changes(self, changes: Changes) -> None:
        """TaskService listener: remember what changed, write within the persist interval."""
        if self._closed:
            return
        self._changed |= changes.upserted
        self._changed |= changes.removed
        self._dirty = True
        self._schedule()

    def _schedule(self) -> None:
        if self._closed or self._timer is not None or self._writing is not None:
            return
        delay = max(0.0, self._last_attempt + self._pause() - time.monotonic())
        self._timer = asyncio.get_running_loop().call_later(delay, self._start_write)

    def _pause(self) -> float:
        if not self.failures:
            return self.interval
        return min(RETRY_MAX_SECONDS, max(self.interval, 1.0) * 2 ** min(self.failures - 1, 8))

    def _snapshot(self) -> Dict[str, Any]:
        """Each task changed since the last write: its entry when a snapshot already made it,
        else its served form for the writer to encode; None for removed ones."""
        changed: Dict[str, Any] = {}
        for task_id in self._changed:
            task = self._store.get(task_id)
            changed[task_id] = None if task is None else statefile.pending_entry(task)
        self._changed = set()
        return changed

    def _start_write(self) -> None:
        self._timer = None
        if not self._dirty or self._closed:
            return
        self._last_attempt = time.monotonic()
        if not self._file_moved_aside():
            self._failed(OSError(errno.EACCES, self.error or "unreadable state file in the way"))
            self._schedule()
            return
        self._dirty = False
        snapshot = self._snapshot()
        self._writing = asyncio.get_running_loop().run_in_executor(
            self._executor, self._timed_write, snapshot, self._clock())
        self._writing.add_done_callback(self._write_done)

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

    def _write_done(self, future: "asyncio.Future[float]") -> None:
        self._writing = None
        exc = future.exception()
        if exc is None:
            self._succeeded(future.result())
        else:
            self._dirty = True
            self._failed(exc)
        if self._dirty:
            self._schedule()

    def _file_moved_aside(self) -> bool:
        if self._unmoved_reason is None:
            return True
        try:
            target = move_aside(self.path, self._clock())
        except FileNotFoundError:
            target = "(it is gone)"
        except OSError:
            return False
        log.warning("state file %s (%s) moved aside to %s at last", self.path,
                    self._unmoved_reason, target)
        self._unmoved_reason = None
        return True

    def _succeeded(self, seconds: float) -> None:
        self._metrics.persist.observe(seconds)
        self.last_saved_at = self._clock()
        if self.error is not None:
            log.warning("state file %s written again after %d failed attempts",
                        self.path, self.failures)
        self.failures = 0
        self._set_error(None)

    def _failed(self, exc: BaseException) -> None:
        self._metrics.persist_failures += 1
        self.failures += 1
        message = f"cannot write the state file: {_reason(exc)}"
        if message != self.error:
            log.error("%s (%s); tasks stay in memory, retrying until it works",
                      message, self.path)
        self._set_error(message)

    def _set_error(self, error: Optional[str]) -> None:
        changed = error != self.error
        self.error = error
        if changed and self._on_health_change is not None:
            self._on_health_change()

    # ---- stopping and reporting

    async def close(self) -> bool:
        """Final write of everything not yet on disk; True when the file holds the last state."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._writing is not None:
            try:
                await self._writing
            except Exception:
                pass
        saved = True
        if self._dirty and self._file_moved_aside():
            snapshot = self._snapshot()
            loop = asyncio.get_running_loop()
            try:
                seconds = await loop.run_in_executor(
                    self._executor, self._timed_write, snapshot, self._clock())
            except Exception as exc:
                self._failed(exc)
                saved = False
            else:
                self._succeeded(seconds)
                self._dirty = False
        elif self._dirty:
            saved = False
        self._executor.shutdown(wait=False)
        if not saved:
            log.error("the final state could not be written to %s: %s", self.path, self.error)
        return saved

    def health(self) -> Dict[str, Any]:
        """The /health report of persistence: ok unless the last write failed."""
        return {
            "ok": self.error is None,
            "saved_at": self.last_saved_at,
            "failures": self.failures,
            "error": self.error,
        }

    def status(self) -> Optional[str]:
        """A few words for systemd's STATUS= line when something is wrong, else None."""
        return self.error
