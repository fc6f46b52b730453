"""Loading the state file into the task store at start; an unusable file is moved aside."""

from __future__ import annotations

import contextlib
import gc
import os
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional

from progressistad.core import statefile
from progressistad.core.store import Task, TaskStore
from progressistad.daemon.persistence import log
from progressistad.daemon.persistence.files import move_aside, reason, remove_leftovers


class StorageError(Exception):
    """The storage path cannot be used at all (it is a directory); the message is one line."""


class Loaded(NamedTuple):
    """What loading leaves the persister: the tasks it loaded, and a file it could not move."""

    count: int
    wire: Dict[str, Any]
    """The served form of each loaded task, by id."""
    unmoved: Optional[str] = None
    """Why the file on disk is unusable, when it could not be moved aside."""
    error: Optional[str] = None
    """What /health reports while that file stays in the way."""


def load(path: str, store: TaskStore, clock: Callable[[], float]) -> Loaded:
    """Load the state file at `path` into `store` (before serving)."""
    if os.path.isdir(path):
        raise StorageError(f"--storage-path {path} is a directory, not a file")
    _prepare_directory(path)
    try:
        with open(path, "rb") as stream:
            raw = stream.read()
    except FileNotFoundError:
        log.info("no state file at %s yet; starting with no tasks", path)
        return Loaded(0, {})
    except OSError as exc:
        return _set_aside(path, f"cannot read it: {reason(exc)}", clock())
    with collector_paused():
        return _restore(path, raw, store, clock)


def _restore(path: str, raw: bytes, store: TaskStore, clock: Callable[[], float]) -> Loaded:
    """Decode the file's bytes into the store; with the cyclic GC paused by the caller."""
    try:
        decoded = statefile.decode(raw, clock())
    except statefile.StateFileError as exc:
        return _set_aside(path, str(exc), clock())
    if decoded.skipped:
        log.warning("state file %s: skipped %d entries that are not tasks (first: %r)",
                    path, len(decoded.skipped), decoded.skipped[0])
    tasks = _within_limit(path, decoded.tasks, store.max_tasks)
    store.load(tasks)
    wire = decoded.wire if tasks is decoded.tasks else {
        task.task_id: decoded.wire[task.task_id] for task in tasks}
    # Long-lived from here on: frozen before the collector runs again, it never scans them
    # (bench/startup.py times the start with a large state file).
    gc.freeze()
    log.info("loaded %d tasks from %s", len(tasks), path)
    return Loaded(len(tasks), wire)


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic GC paused for the duration of the block."""
    # Loading makes only acyclic objects, and the collector's repeated passes over them
    # would slow it down (bench/startup.py times the start with a large state file).
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _prepare_directory(path: str) -> None:
    directory = os.path.dirname(path)
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    except OSError as exc:
        log.warning("cannot create %s: %s; writes will be retried", directory, reason(exc))
        return
    remove_leftovers(path)


def _within_limit(path: str, tasks: List[Task], limit: int) -> List[Task]:
    if len(tasks) <= limit:
        return tasks
    tasks = sorted(tasks, key=lambda task: task.updated_at)
    log.warning("state file %s holds %d tasks, more than --max-tasks %d: keeping the %d most "
                "recently updated", path, len(tasks), limit, limit)
    return tasks[-limit:]


def _set_aside(path: str, why: str, now: float) -> Loaded:
    try:
        target = move_aside(path, now)
    except OSError as exc:
        log.error("state file %s is unusable (%s) and could not be moved aside (%s): starting "
                  "with no tasks; it will not be overwritten", path, why, reason(exc))
        return Loaded(0, {}, unmoved=why,
                      error=f"unreadable state file could not be moved aside: {reason(exc)}")
    log.error("state file %s is unusable (%s): moved it to %s, starting with no tasks",
              path, why, target)
    return Loaded(0, {})


def moved_aside_at_last(path: str, why: str, now: float) -> bool:
    """Try again to move the unusable file loading left in place; True once it is out of the way."""
    try:
        target = move_aside(path, now)
    except FileNotFoundError:
        target = "(it is gone)"
    except OSError:
        return False
    log.warning("state file %s (%s) moved aside to %s at last", path, why, target)
    return True
