"""The SQLite backend against real files: restarts, and every fault it must outlive.

A corrupt file at start, a newer layout, a lock held by another connection, a full
disk (a small tmpfs, mounted when this runs as root), the file deleted under it, a
full queue: each is reported by health(), never stops append(), and passes by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import sqlite3
import stat
import time

import pytest

from progressistad.history import query
from progressistad.history.sqlite import SCHEMA_VERSION, SQLiteHistory

from tests.history.conftest import run
from tests.support import fill_disk, locked_by_another
from tests.history.helpers import T0, run as make_run, until

FAST = {"retry_first": 0.05, "retry_most": 0.2}


def open_file(path, **options):
    return SQLiteHistory(str(path), **{**FAST, **options})


async def stored(backend, **arguments):
    return (await backend.runs(query.run_query(limit=1000, **arguments)))["runs"]


async def drained(backend):
    await until(lambda: backend.health()["queued"] == 0, what="runs written")


async def with_one_run(path, **options):
    """A backend on `path` holding one run written, which ended at T0."""
    backend = open_file(path, **options)
    backend.append([make_run("j", ended_at=T0)])
    await drained(backend)
    return backend


def test_runs_survive_a_restart_in_a_wal_file_only_its_owner_can_read(tmp_path):
    path = tmp_path / "state" / "history.sqlite3"

    async def body():
        first = open_file(path)
        runs = [make_run("j", ended_at=T0 + i) for i in range(10)]
        first.append(runs)
        assert await first.close()
        second = open_file(path)
        assert [r["id"] for r in await stored(second)] == [r["id"] for r in reversed(runs)]
        assert second.health()["runs"] == 10
        assert await second.close()

    run(body())
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        indexes = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert {"runs_by_end", "runs_by_job", "runs_closed"} <= indexes


def test_a_corrupt_file_at_start_is_moved_aside_and_a_new_one_begun(tmp_path):
    path = tmp_path / "history.sqlite3"
    garbage = b"this is not a database at all" * 100
    path.write_bytes(garbage)
    (tmp_path / "history.sqlite3-wal").write_bytes(b"stale wal")

    async def body():
        backend = open_file(path)
        backend.append([make_run("j")])
        await drained(backend)
        assert len(await stored(backend)) == 1
        health = backend.health()
        assert health["ok"] and "moved it to" in health["last_fault"]
        assert await backend.close()

    run(body())
    (aside,) = glob.glob(str(tmp_path / "history.sqlite3.corrupt-*"))
    assert open(aside, "rb").read() == garbage


def test_a_newer_layout_is_left_alone_and_reported(tmp_path):
    path = tmp_path / "history.sqlite3"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    before = path.read_bytes()

    async def body():
        backend = open_file(path)
        backend.append([make_run("j")])
        await until(lambda: not backend.health()["ok"], what="the fault reported")
        assert "newer" in backend.health()["error"] and backend.health()["queued"] == 1
        assert not await backend.close()

    run(body())
    assert path.read_bytes() == before and not glob.glob(str(tmp_path / "*.corrupt-*"))


def test_a_lock_held_by_another_process_degrades_then_everything_is_written(tmp_path):
    path = tmp_path / "history.sqlite3"

    async def body():
        backend = await with_one_run(path)
        with locked_by_another(path):
            runs = [make_run("j", ended_at=T0 + i) for i in range(1, 50)]
            for one in runs:
                backend.append([one])
            await until(lambda: not backend.health()["ok"], what="the lock reported")
            assert "locked" in backend.health()["error"]
            assert backend.health()["queued"] == 49
            started = time.monotonic()
            assert len(await stored(backend)) == 1, "reads go on under another's write lock"
            assert time.monotonic() - started < 1.0
            await asyncio.sleep(0.3)
            assert backend.health()["failures"] >= 2, "tried again"
        await until(lambda: backend.health()["ok"], what="recovery")
        assert len(await stored(backend)) == 50 and backend.health()["queued"] == 0
        assert await backend.close()

    run(body())


def test_runs_beyond_the_queue_bound_are_dropped_and_counted(tmp_path):
    path = tmp_path / "history.sqlite3"

    async def body():
        backend = await with_one_run(path, queue_limit=10)
        with locked_by_another(path):
            backend.append([make_run("j", ended_at=T0 + i) for i in range(1, 16)])
            assert backend.health()["queued"] == 10 and backend.health()["dropped"] == 5
        await drained(backend)
        assert [r["ended_at"] for r in await stored(backend)] == [T0 + i for i in range(10, -1, -1)]
        assert await backend.close()

    run(body())


def test_close_says_when_runs_could_not_be_written(tmp_path):
    path = tmp_path / "history.sqlite3"

    async def body():
        backend = open_file(path)
        await drained(backend)
        with locked_by_another(path):
            backend.append([make_run("j")])
            assert not await backend.close()
        with pytest.raises(query.HistoryUnavailable):
            await backend.runs(query.run_query())

    run(body())


def test_a_file_deleted_under_the_backend_is_noticed_and_begun_again(tmp_path):
    path = tmp_path / "history.sqlite3"

    async def body():
        backend = await with_one_run(path)
        for name in glob.glob(str(path) + "*"):
            os.unlink(name)
        backend.append([make_run("j", ended_at=T0 + 1)])
        await drained(backend)
        assert path.exists()
        assert [r["ended_at"] for r in await stored(backend)] == [T0 + 1]
        assert "deleted" in backend.health()["last_fault"] and backend.health()["ok"]
        os.unlink(path)  # noticed by the retention pass too, with nothing to write
        await backend.maintain()
        assert path.exists()
        assert await backend.close()
    run(body())
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0


def test_a_full_disk_degrades_and_when_space_comes_back_every_run_is_written(small_disk):
    path = small_disk / "history.sqlite3"

    async def body():
        backend = await with_one_run(path)
        filler = fill_disk(small_disk)
        runs = [make_run("j", ended_at=T0 + i, desc="x" * 1000) for i in range(1, 200)]
        backend.append(runs)
        await until(lambda: not backend.health()["ok"], what="the full disk reported")
        assert "full" in backend.health()["error"]
        assert backend.health()["queued"] == len(runs)
        filler.unlink()
        await until(lambda: backend.health()["ok"], what="recovery")
        assert len(await stored(backend)) == 200
        assert await backend.close()

    run(body())


def test_without_a_path_the_history_lives_in_memory():
    async def body():
        backend = SQLiteHistory(None)
        backend.append([make_run("j")])
        await drained(backend)
        assert len(await stored(backend)) == 1
        assert backend.health()["path"] is None and backend.health()["ok"]
        assert await backend.close()

    run(body())


VERSION_1 = """
BEGIN IMMEDIATE;
CREATE TABLE runs (id TEXT NOT NULL, job TEXT NOT NULL, status TEXT NOT NULL,
    ended_at REAL NOT NULL, duration REAL NOT NULL, body TEXT NOT NULL);
CREATE UNIQUE INDEX runs_by_end ON runs (ended_at, id);
CREATE INDEX runs_by_job ON runs (job, ended_at, id);
CREATE INDEX runs_closed ON runs (job, ended_at, id, duration) WHERE status = 'close';
CREATE TABLE jobs (job TEXT PRIMARY KEY, runs INTEGER NOT NULL, ok INTEGER NOT NULL,
    failed INTEGER NOT NULL) WITHOUT ROWID;
CREATE TRIGGER run_added AFTER INSERT ON runs BEGIN
    INSERT OR IGNORE INTO jobs (job, runs, ok, failed) VALUES (NEW.job, 0, 0, 0);
    UPDATE jobs SET runs = runs + 1, ok = ok + NOT (NEW.status IN ('abandoned', 'error')),
        failed = failed + (NEW.status IN ('abandoned', 'error')) WHERE job = NEW.job;
END;
CREATE TRIGGER run_removed AFTER DELETE ON runs BEGIN
    UPDATE jobs SET runs = runs - 1, ok = ok - NOT (OLD.status IN ('abandoned', 'error')),
        failed = failed - (OLD.status IN ('abandoned', 'error')) WHERE job = OLD.job;
    DELETE FROM jobs WHERE job = OLD.job AND runs <= 0;
END;
PRAGMA user_version = 1;
COMMIT;
"""
"""The layout of the first release of the history, as it wrote its files."""


def test_a_file_of_the_first_layout_is_brought_up_to_date_with_its_runs(tmp_path):
    path = tmp_path / "history.sqlite3"
    old = [make_run("j", status, ended_at=T0 + i) for i, status in
           enumerate(("close", "error", "close", "abandoned"))]
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.executescript(VERSION_1)
        db.executemany("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?)",
                       [(r["id"], r["job"], r["status"], r["ended_at"], r["duration"], "{}")
                        for r in old])

    async def body():
        backend = open_file(path)
        figures = (await backend.metrics(10))["jobs"]["j"]
        assert figures["statuses"] == {
            "close": {"runs": 2, "last_ended_at": T0 + 2},
            "error": {"runs": 1, "last_ended_at": T0 + 1},
            "abandoned": {"runs": 1, "last_ended_at": T0 + 3}}
        backend.append([make_run("j", "error", ended_at=T0 + 9)])
        await drained(backend)
        figures = (await backend.metrics(10))["jobs"]["j"]
        assert figures["statuses"]["error"] == {"runs": 2, "last_ended_at": T0 + 9}
        assert (figures["runs"], figures["ok"], figures["failed"]) == (5, 2, 3)
        assert await backend.close()
    run(body())
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
