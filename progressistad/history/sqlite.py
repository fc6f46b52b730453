"""Runs in an embedded SQLite database (the standard library's sqlite3), or in memory.

One worker thread owns the connection: it writes the runs `append` queues, in
transactions of many, and answers the queries, which the IOLoop awaits as
futures. A database the worker cannot use never stops ingest: a corrupt file is
moved aside and a new one begun; a lock held by another process, a full disk or
a directory that cannot be written keep the runs in memory (bounded), show in
`health()` and are tried again until they pass; a file deleted or replaced
under the daemon is noticed and begun again. Without a path the same database
lives in memory (":memory:"), so both answer from the same SQL.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import json
import os
import queue
import sqlite3
import threading
import time
from collections import deque
from itertools import islice
from typing import Any, Callable, Deque, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from progressistad import contract
from progressistad.core import wirejson
from progressistad.daemon.persistence.files import move_aside
from progressistad.history import expectations, records
from progressistad.history.backlog import QUEUE_LIMIT, RETRY_FIRST_SECONDS, \
    RETRY_MOST_SECONDS, WRITE_DELAY, Backlog, Faults, log
from progressistad.history.query import HistoryUnavailable, JobQuery, RunQuery, job_figures, \
    job_summary, jobs_page, runs_page
from progressistad.history.records import FAILED_STATUSES, Run

SCHEMA_VERSION = 2
"""PRAGMA user_version of the layout below; a newer file is left alone, never rewritten, an
older one brought up to it (version 2 added the jobs' counts and last ends by status)."""
WRITE_BATCH = 2000
"""Most runs per write transaction."""
DELETE_BATCH = 1000
"""Most runs one retention or delete transaction removes."""
BUSY_TIMEOUT = 0.1
"""Seconds a statement waits for another process's lock before the write is retried later."""

_CLOSE = contract.CLOSE
_FAILED = "status IN ({})".format(", ".join(f"'{status}'" for status in sorted(FAILED_STATUSES)))
_COUNT_OF = {contract.CLOSE: "ok", contract.ERROR: "errors",
             records.ABANDONED: "failed - errors"}
"""A job's runs of each status, from its counters."""
_LAST_OF = {status: f"last_{status}" for status in records.RUN_STATUSES}
"""The column of when a job's last run of each status ended."""


def _last_added(status: str) -> str:
    column = _LAST_OF[status]
    return (f"{column} = CASE WHEN NEW.status = '{status}' THEN "
            f"max(coalesce({column}, NEW.ended_at), NEW.ended_at) ELSE {column} END")


def _last_removed(status: str) -> str:
    # Runs go oldest first (retention, max-runs, older_than), so the last of a status goes
    # only with every other of it; the counters are the ones before this removal.
    column = _LAST_OF[status]
    return (f"{column} = CASE WHEN OLD.status = '{status}' AND {_COUNT_OF[status]} <= 1 "
            f"THEN NULL ELSE {column} END")


_TABLES = f"""
CREATE TABLE IF NOT EXISTS runs (
    id TEXT NOT NULL,
    job TEXT NOT NULL,
    status TEXT NOT NULL,
    ended_at REAL NOT NULL,
    duration REAL NOT NULL,
    body TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS runs_by_end ON runs (ended_at, id);
CREATE INDEX IF NOT EXISTS runs_by_job ON runs (job, ended_at, id);
CREATE INDEX IF NOT EXISTS runs_closed ON runs (job, ended_at, id, duration)
    WHERE status = '{_CLOSE}';
CREATE TABLE IF NOT EXISTS jobs (
    job TEXT PRIMARY KEY,
    runs INTEGER NOT NULL,
    ok INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    errors INTEGER NOT NULL DEFAULT 0,
    {", ".join(f"{column} REAL" for column in _LAST_OF.values())}
) WITHOUT ROWID;
"""
_FROM_VERSION_1 = "".join([
    "DROP TRIGGER IF EXISTS run_added;\nDROP TRIGGER IF EXISTS run_removed;\n",
    "ALTER TABLE jobs ADD COLUMN errors INTEGER NOT NULL DEFAULT 0;\n",
    *(f"ALTER TABLE jobs ADD COLUMN {column} REAL;\n" for column in _LAST_OF.values()),
    "UPDATE jobs SET errors = (SELECT COUNT(*) FROM runs WHERE runs.job = jobs.job AND "
    f"status = '{contract.ERROR}'), ",
    ", ".join(f"{column} = (SELECT MAX(ended_at) FROM runs WHERE runs.job = jobs.job AND "
              f"status = '{status}')" for status, column in _LAST_OF.items()),
    ";\n"])
_TRIGGERS = f"""
CREATE TRIGGER IF NOT EXISTS run_added AFTER INSERT ON runs BEGIN
    INSERT OR IGNORE INTO jobs (job, runs, ok, failed) VALUES (NEW.job, 0, 0, 0);
    UPDATE jobs SET runs = runs + 1, ok = ok + NOT (NEW.{_FAILED}),
        failed = failed + (NEW.{_FAILED}), errors = errors + (NEW.status = '{contract.ERROR}'),
        {", ".join(map(_last_added, _LAST_OF))} WHERE job = NEW.job;
END;
CREATE TRIGGER IF NOT EXISTS run_removed AFTER DELETE ON runs BEGIN
    UPDATE jobs SET runs = runs - 1, ok = ok - NOT (OLD.{_FAILED}),
        failed = failed - (OLD.{_FAILED}), errors = errors - (OLD.status = '{contract.ERROR}'),
        {", ".join(map(_last_removed, _LAST_OF))} WHERE job = OLD.job;
    DELETE FROM jobs WHERE job = OLD.job AND runs <= 0;
END;
"""


def _schema(version: int) -> str:
    """The statements that bring a file of layout `version` (0: a new one) to SCHEMA_VERSION,
    in one transaction."""
    upgrade = _FROM_VERSION_1 if version == 1 else ""
    return (f"BEGIN IMMEDIATE;\n{_TABLES}{upgrade}{_TRIGGERS}"
            f"PRAGMA user_version = {SCHEMA_VERSION};\nCOMMIT;\n")


ROWS_PER_INSERT = 150
"""Runs one INSERT carries (SQLite's oldest limit is 999 values). SQLite gives the loop's thread
the GIL while each statement runs, and the worker waits to take it back: fewer statements, fewer
of those waits (bench/history.py's ingest rows)."""


def _insert(rows: int) -> str:
    """INSERT OR IGNORE of `rows` runs: a run kept already is ignored."""
    return ("INSERT OR IGNORE INTO runs (id, job, status, ended_at, duration, body) VALUES "
            + ", ".join(["(?, ?, ?, ?, ?, ?)"] * rows))
_NEWEST = "ORDER BY ended_at DESC, id DESC"
_LAST_RUN = f"SELECT body FROM runs WHERE job = ? {_NEWEST} LIMIT 1"
_CLOSES = (f"SELECT ended_at, id, duration FROM runs WHERE job = ? AND status = '{_CLOSE}' "
           f"{_NEWEST} LIMIT {expectations.WINDOW}")
_BY_STATUS = (f"SELECT job, {', '.join(_COUNT_OF[s] + ', ' + _LAST_OF[s] for s in _LAST_OF)} "
              "FROM jobs ORDER BY job LIMIT ?")

_CORRUPT, _LOCKED, _FULL, _OTHER = "corrupt", "locked", "full", "other"


class SchemaError(sqlite3.DatabaseError):
    """The file holds a newer layout than this daemon knows (a downgrade): it is left alone."""


def _kind(exc: BaseException) -> str:
    """What a failure means for the database: corrupt, locked, full, or other."""
    name = getattr(exc, "sqlite_errorname", "") or ""  # Python 3.11+; the text otherwise
    text = str(exc).lower()
    if isinstance(exc, SchemaError):
        return _OTHER
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or "malformed" in text \
            or "not a database" in text:
        return _CORRUPT
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "is locked" in text:
        return _LOCKED
    if name.startswith("SQLITE_FULL") or "disk is full" in text:
        return _FULL
    return _OTHER


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _row(run: Run) -> Tuple[str, str, str, float, float, str]:
    return (run["id"], run["job"], run["status"], run["ended_at"], run["duration"],
            wirejson.dumps(run))


def _where(*conditions: Tuple[str, Any]) -> Tuple[str, List[Any]]:
    """A WHERE clause of the conditions whose value is not None (a tuple fills several `?`)."""
    kept = [(clause, value) for clause, value in conditions if value is not None]
    args: List[Any] = []
    for _, value in kept:
        args.extend(value if isinstance(value, tuple) else (value,))
    return (f"WHERE {' AND '.join(clause for clause, _ in kept)} " if kept else ""), args


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE: take the write lock first, so a busy database fails at once, not halfway."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
        raise


class _Call:
    __slots__ = ("fn", "future")

    def __init__(self, fn: Callable[[sqlite3.Connection], Any]) -> None:
        self.fn = fn
        self.future: "concurrent.futures.Future[Any]" = concurrent.futures.Future()


_STOP = object()


class SQLiteHistory:
    """The history in an SQLite file at `path`, or in memory when `path` is None."""

    def __init__(self, path: Optional[str], *, retention_days: float = 90.0,
                 max_runs: int = 100000, queue_limit: int = QUEUE_LIMIT,
                 clock: Callable[[], float] = time.time, retry_first: float = RETRY_FIRST_SECONDS,
                 retry_most: float = RETRY_MOST_SECONDS, busy_timeout: float = BUSY_TIMEOUT,
                 write_delay: float = WRITE_DELAY) -> None:
        self.path = None if path is None else os.path.abspath(path)
        self.retention_days = retention_days
        self.max_runs = max_runs
        self._clock = clock
        self._busy_timeout = busy_timeout
        self._write_delay = write_delay
        self._inbox: "queue.SimpleQueue[Any]" = queue.SimpleQueue()
        self._backlog = Backlog(queue_limit)
        self._faults = Faults(f"history database {self.path or '(in memory)'}",
                              retry_first, retry_most)
        self._closing = False
        self._stopped: "concurrent.futures.Future[bool]" = concurrent.futures.Future()
        # The worker's own state from here on.
        self._pending: Deque[Run] = deque()
        self._db: Optional[sqlite3.Connection] = None
        self._identity: Optional[Tuple[int, int]] = None
        self._retry_at = 0.0
        self._unmovable: Optional[str] = None
        """Why an unusable file could not be moved aside, for the next failure report."""
        self.count = 0
        """Runs in the database, as the worker last knew."""
        self.last_fault: Optional[str] = None
        """The last fault the worker overcame by beginning a new database."""
        self._thread = threading.Thread(target=self._work, name="progressistad-history",
                                        daemon=True)
        self._thread.start()

    # ---- the loop's side

    def append(self, runs: Sequence[Run]) -> None:
        """Queue runs to be written (from the loop thread); never blocks, drops beyond the bound."""
        taken = self._backlog.admit(len(runs)) if not self._closing else 0
        if taken:
            self._inbox.put(list(runs[:taken]))

    async def runs(self, query: RunQuery) -> Dict[str, Any]:
        return await self._call(functools.partial(self._select_runs, query))

    async def jobs(self, query: JobQuery) -> Dict[str, Any]:
        return await self._call(functools.partial(self._select_jobs, query))

    async def closes(self, jobs: Iterable[str]) -> Dict[str, List[expectations.Closed]]:
        """Each job's most recent close runs, newest first."""
        return await self._call(functools.partial(self._select_closes, list(jobs)))

    async def metrics(self, limit: int) -> Dict[str, Any]:
        """The first `limit` jobs by name for /metrics (`query.job_figures`)."""
        return await self._call(functools.partial(self._select_metrics, limit))

    async def delete(self, job: Optional[str], before: Optional[float]) -> int:
        """Remove the runs of `job` (any when None) that ended before `before` (any when None)."""
        return await self._call(functools.partial(self._delete_where, job, before))

    async def maintain(self) -> int:
        """Apply retention by age and count, in batches; returns how many runs it removed."""
        return await self._call(self._retain)

    def health(self) -> Dict[str, Any]:
        return self._faults.health(self._backlog, path=self.path, runs=self.count,
                                   last_fault=self.last_fault)

    async def close(self) -> bool:
        """Write what waits, then stop the worker; True when nothing was left unwritten."""
        if not self._closing:
            self._closing = True
            self._inbox.put(_STOP)
        return await asyncio.wrap_future(self._stopped)

    def _call(self, fn: Callable[[sqlite3.Connection], Any]) -> "asyncio.Future[Any]":
        if self._closing:
            raise HistoryUnavailable("the history is closed")
        call = _Call(fn)
        self._inbox.put(call)
        return asyncio.wrap_future(call.future)

    # ---- the worker

    def _work(self) -> None:
        stopping = False
        try:
            self._attempt()
            while not stopping:
                calls, stopping = self._gather()
                if (self._pending or self._faults.error) and (
                        stopping or time.monotonic() >= self._retry_at):
                    self._attempt()
                for call in calls:
                    self._answer(call)
        finally:  # never leave close() waiting
            self._disconnect()
            self._stopped.set_result(stopping and not self._pending)

    def _gather(self) -> Tuple[List[_Call], bool]:
        """Wait for work, or until the next retry; take whatever else is queued, and runs that
        come within the write delay of the first (a query or a stop ends the wait)."""
        timeout = None
        if self._pending or self._faults.error:
            timeout = max(0.0, self._retry_at - time.monotonic())
        calls: List[_Call] = []
        try:
            stopping = self._take(self._inbox.get(timeout=timeout), calls)
        except queue.Empty:
            return [], False
        deadline = time.monotonic() + self._write_delay
        while not stopping:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                left = deadline - time.monotonic()
                if calls or not self._pending or left <= 0:
                    break
                try:
                    item = self._inbox.get(timeout=left)
                except queue.Empty:
                    break
            stopping = self._take(item, calls)
        return calls, stopping

    def _take(self, item: Any, calls: List[_Call]) -> bool:
        """File one item of the inbox; True for the stop."""
        if item is _STOP:
            return True
        if isinstance(item, _Call):
            calls.append(item)
        else:
            self._pending.extend(item)
        return False

    def _attempt(self) -> None:
        """Write what waits and keep to max-runs; a failure is reported and retried later."""
        try:
            db = self._connection()
            self._write(db)
            self._trim(db)
        except Exception as exc:  # an unforeseen one too: reported and retried, never fatal
            self._failed(exc)
        else:
            self._faults.succeeded()

    def _write(self, db: sqlite3.Connection) -> None:
        while self._pending:
            count = min(WRITE_BATCH, len(self._pending))
            rows = [_row(run) for run in islice(self._pending, count)]
            added = 0
            with _transaction(db):
                for at in range(0, count, ROWS_PER_INSERT):
                    chunk = rows[at:at + ROWS_PER_INSERT]
                    added += db.execute(_insert(len(chunk)),
                                        [value for row in chunk for value in row]).rowcount
            for _ in range(count):
                self._pending.popleft()
            self._backlog.settle(count)
            self.count += added

    def _answer(self, call: _Call) -> None:
        if not call.future.set_running_or_notify_cancel():
            return
        try:
            result = call.fn(self._connection())
        except (sqlite3.Error, OSError) as exc:
            self._recover(exc)
            call.future.set_exception(HistoryUnavailable(
                f"cannot read the history database: {_reason(exc)}"))
        except BaseException as exc:
            call.future.set_exception(exc)
        else:
            call.future.set_result(result)

    def _failed(self, exc: BaseException) -> None:
        error = f"cannot write the history database: {_reason(exc)}"
        if self._recover(exc):
            self._retry_at = 0.0
            return
        if self._unmovable is not None:
            error, self._unmovable = self._unmovable, None
        self._retry_at = time.monotonic() + self._faults.failed(error)

    def _recover(self, exc: BaseException) -> bool:
        """Act on a failure: a corrupt file is set aside (True when it was, so retry at once);
        any other fault of a file closes the connection, opened again at the next use. A lock
        or a full disk keep it, as does a database in memory, which closing would lose."""
        kind = _kind(exc)
        if self.path is None or kind in (_LOCKED, _FULL):
            return False
        if kind == _CORRUPT:
            return self._start_over(_reason(exc))
        self._disconnect()
        return False

    # ---- the connection and the file

    def _connection(self) -> sqlite3.Connection:
        if self._db is not None and self.path is not None and not self._same_file():
            self._noted(f"{self.path} was deleted or replaced while in use; began a new one")
            self._disconnect()
        if self._db is None:
            self._db = self._open()
        return self._db

    def _open(self, fresh: bool = False) -> sqlite3.Connection:
        if self.path is None:
            db = sqlite3.connect(":memory:", isolation_level=None)
        else:
            os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
            db = sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None)
        try:
            self._prepare(db)
        except sqlite3.DatabaseError as exc:
            db.close()
            if self.path is None or fresh or _kind(exc) != _CORRUPT:
                raise
            if not self._start_over(_reason(exc)):
                raise
            return self._open(fresh=True)
        if self.path is not None:
            stat = os.stat(self.path)
            self._identity = (stat.st_dev, stat.st_ino)
        return db

    def _prepare(self, db: sqlite3.Connection) -> None:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise SchemaError(f"its layout is version {version}, newer than this daemon's "
                              f"{SCHEMA_VERSION}: left as it is")
        if self.path is not None:
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
        if version < SCHEMA_VERSION:
            try:
                db.executescript(_schema(version))
            except sqlite3.Error:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        self.count = db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]

    def _same_file(self) -> bool:
        assert self.path is not None
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return False
        except OSError:
            return True  # cannot tell; SQLite will say what is wrong
        return (stat.st_dev, stat.st_ino) == self._identity

    def _start_over(self, reason: str) -> bool:
        """Move an unusable database (and its WAL) aside, so that the next use begins a new
        one; False when it could not be moved (`_unmovable` says why)."""
        assert self.path is not None
        self._disconnect()
        try:
            target: Optional[str] = move_aside(self.path, self._clock())
        except FileNotFoundError:
            target = None
        except OSError as exc:
            self._unmovable = (f"unusable history database ({reason}) could not be moved "
                               f"aside: {_reason(exc)}")
            return False
        for suffix in ("-wal", "-shm"):
            sidecar = self.path + suffix
            with contextlib.suppress(FileNotFoundError):
                if target is not None and suffix == "-wal" and not os.path.lexists(target + suffix):
                    os.rename(sidecar, target + suffix)
                else:
                    os.unlink(sidecar)
        self._noted(f"{self.path} was unusable ({reason}): moved it to {target}, began a new one")
        return True

    def _noted(self, fault: str) -> None:
        log.error("history database %s", fault)
        self.last_fault = fault

    def _disconnect(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None

    # ---- retention and deletion

    def _retain(self, db: sqlite3.Connection) -> int:
        removed = 0
        if self.retention_days > 0:
            cutoff = self._clock() - self.retention_days * 86400.0
            removed += self._delete_batches(db, "WHERE ended_at < ? ORDER BY ended_at", (cutoff,))
        return removed + self._trim(db)

    def _trim(self, db: sqlite3.Connection) -> int:
        """Remove the oldest runs beyond max-runs, a batch per transaction."""
        removed = 0
        while self.count > self.max_runs:
            batch = self._delete(db, "ORDER BY ended_at, id LIMIT ?",
                                 (min(DELETE_BATCH, self.count - self.max_runs),))
            if not batch:
                self.count = db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
                break
            removed += batch
        return removed

    def _delete_where(self, job: Optional[str], before: Optional[float],
                      db: sqlite3.Connection) -> int:
        where, args = _where(("job = ?", job), ("ended_at < ?", before))
        return self._delete_batches(db, where, tuple(args))

    def _delete_batches(self, db: sqlite3.Connection, where: str, args: Tuple[Any, ...]) -> int:
        removed = 0
        while True:
            batch = self._delete(db, f"{where} LIMIT ?", args + (DELETE_BATCH,))
            removed += batch
            if batch < DELETE_BATCH:
                return removed

    def _delete(self, db: sqlite3.Connection, selection: str, args: Tuple[Any, ...]) -> int:
        with _transaction(db):
            removed = db.execute(
                f"DELETE FROM runs WHERE rowid IN (SELECT rowid FROM runs {selection})",
                args).rowcount
        self.count -= removed
        return removed

    # ---- queries

    def _select_runs(self, query: RunQuery, db: sqlite3.Connection) -> Dict[str, Any]:
        where, args = _where(("job = ?", query.job), ("status = ?", query.status),
                             ("ended_at >= ?", query.since), ("ended_at < ?", query.until),
                             ("(ended_at, id) < (?, ?)", query.position))
        rows = db.execute(f"SELECT body FROM runs {where}{_NEWEST} LIMIT ?",
                          args + [query.limit + 1])
        return runs_page([json.loads(body) for (body,) in rows], query.limit)

    def _select_jobs(self, query: JobQuery, db: sqlite3.Connection) -> Dict[str, Any]:
        where, args = _where(("job GLOB ?", query.pattern), ("job > ?", query.position))
        rows = db.execute(f"SELECT job, runs, ok, failed FROM jobs {where}ORDER BY job LIMIT ?",
                          args + [query.limit + 1]).fetchall()
        page = []
        for job, runs, ok, failed in rows[:query.limit]:
            (last,) = db.execute(_LAST_RUN, (job,)).fetchone() or (None,)
            durations = [duration for _, _, duration in db.execute(_CLOSES, (job,))]
            page.append((job, job_summary(runs, ok, failed, last and json.loads(last), durations)))
        return jobs_page(page, len(rows) > query.limit)

    def _select_metrics(self, limit: int, db: sqlite3.Connection) -> Dict[str, Any]:
        page = self._select_jobs(JobQuery(limit=limit), db)
        statuses: Dict[str, Dict[str, Tuple[int, Optional[float]]]] = {}
        for job, *figures in db.execute(_BY_STATUS, (limit,)):
            statuses[job] = {status: (figures[2 * i], figures[2 * i + 1])
                             for i, status in enumerate(_LAST_OF)}
        return job_figures(list(page["jobs"].items()), statuses, page["next"] is not None)

    def _select_closes(self, jobs: List[str],
                       db: sqlite3.Connection) -> Dict[str, List[expectations.Closed]]:
        return {job: [tuple(row) for row in db.execute(_CLOSES, (job,))] for job in jobs}
