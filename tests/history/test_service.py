"""History, the seam the daemon calls: runs in, expectations and overdue out, the API's checks."""

from __future__ import annotations

import asyncio
import os

import pytest

from progressistad.history import query
from progressistad.history.service import History, history_path, open_history
from progressistad.history.sqlite import SQLiteHistory

from tests.history.conftest import Clock, run
from tests.history.helpers import T0, run as make_run, task, until


def nightly_runs(durations, job="nightly"):
    return [make_run(job, "close", ended_at=T0 + 1000 * i, duration=d)
            for i, d in enumerate(durations)]


def test_expected_duration_comes_with_the_third_close_run_and_overdue_past_the_factor():
    clock = Clock(T0 + 100000)

    async def body():
        history = History(SQLiteHistory(None), clock, overdue_factor=1.5)
        active = task("nightly:h:9", status="update", created_at=clock.now - 100,
                      meta={"job": "nightly"})
        history.record(nightly_runs([100, 120]))
        assert history.served_fields(active, None, clock.now) == \
            {"expected_duration": None, "overdue": False}
        history.record(nightly_runs([110], job="nightly") + [make_run("nightly", "error")])
        assert history.expectation("nightly") == (110, 120, 180)
        assert history.served_fields(active, None, clock.now) == \
            {"expected_duration": 110, "overdue": False}
        assert history.served_fields(active, clock.now - 181, clock.now)["overdue"]
        assert not history.served_fields(active, clock.now - 180, clock.now)["overdue"]
        for status in ("close", "error", "stale"):
            assert history.served_fields({**active, "status": status}, clock.now - 500,
                                         clock.now) == {"expected_duration": None,
                                                        "overdue": False}
        assert await history.close()
    run(body())


def test_a_restarted_daemon_reads_a_job_s_close_runs_when_first_asked(tmp_path):
    clock = Clock(T0 + 100000)
    path = str(tmp_path / "history.sqlite3")

    async def body():
        first = History(SQLiteHistory(path), clock)
        first.record(nightly_runs([60, 70, 80, 90]))
        assert await first.close()
        second = History(SQLiteHistory(path), clock)
        assert second.expectation("nightly") is None
        await until(lambda: second.expectation("nightly") is not None, what="the job loaded")
        assert second.expectation("nightly").expected_duration == 70
        assert second.expectation("unknown") is None
        assert await second.close()
    run(body())


def test_observe_records_what_a_change_ended_and_returns_the_new_run_start():
    clock = Clock()

    async def body():
        history = History(SQLiteHistory(None), clock)
        running = task("t", status="update", created_at=T0, updated_at=T0 + 5)
        started = history.observe(running, {**running, "status": "start", "updated_at": T0 + 9},
                                  None, log_before=["before the restart"])
        assert started == T0 + 9
        assert history.observe({**running, "status": "start"}, None, started) == started
        await until(lambda: history.health()["queued"] == 0)
        runs = (await history.runs())["runs"]
        assert [(r["status"], r["started_at"], r["ended_at"]) for r in runs] == [
            ("abandoned", T0 + 9, T0 + 5), ("abandoned", T0, T0 + 5)]
        assert runs[1]["log"] == ["before the restart"]
        assert await history.close()
    run(body())


def test_the_api_checks_its_arguments_and_delete_forgets_the_job_s_figures():
    clock = Clock(T0 + 100000)

    async def body():
        history = History(SQLiteHistory(None), clock)
        history.record(nightly_runs([10, 20, 30]))
        assert history.expectation("nightly") is not None
        with pytest.raises(query.QueryError):
            await history.runs(limit=5000)
        with pytest.raises(query.QueryError):
            await history.jobs(job="[")
        with pytest.raises(query.QueryError):
            await history.delete(older_than=-1)
        assert list((await history.jobs(job="night*"))["jobs"]) == ["nightly"]
        assert await history.delete(job="nightly", older_than=0) == 3
        assert history.expectation("nightly") is None
        assert await history.maintain() == 0
        assert history.health()["ok"]
        assert await history.close()
    run(body())


def test_where_the_history_lives():
    assert history_path("/x/h.db", "/var/lib/p/state.json") == "/x/h.db"
    assert history_path(None, "/var/lib/p/state.json") == "/var/lib/p/history.sqlite3"
    assert history_path(None, "state.json") == os.path.join(os.getcwd(), "history.sqlite3")
    assert history_path(None, None) is None
    assert open_history(clock=Clock(), max_runs=0) is None


def test_open_history_builds_the_sqlite_backend_and_says_when_it_is_in_memory(caplog):
    async def body():
        history = open_history(clock=Clock(), retention_days=3, max_runs=10)
        assert isinstance(history.backend, SQLiteHistory)
        assert (history.backend.retention_days, history.backend.max_runs) == (3, 10)
        assert await history.close()
    with caplog.at_level("INFO", logger="progressistad.history"):
        run(body())
    assert "in memory" in caplog.text


def test_open_history_with_a_redis_client_uses_redis(redis_server, redis_prefix):
    pytest.importorskip("redis")
    from progressistad.cluster.store import connect
    from progressistad.history.redis import RedisHistory

    async def body():
        client = connect(redis_server.url, 2.0)
        history = open_history(clock=Clock(), redis_client=client, redis_prefix=redis_prefix)
        assert isinstance(history.backend, RedisHistory)
        history.record([make_run("j")])
        await until(lambda: history.health()["queued"] == 0)
        assert len((await history.runs(job="j"))["runs"]) == 1
        assert await history.close()
        await (getattr(client, "aclose", None) or client.close)()
    run(body())


def test_close_cancels_a_load_in_flight():
    async def body():
        history = History(SQLiteHistory(None), Clock())
        history.expectation("j")
        assert await history.close()
        await asyncio.sleep(0)
    run(body())
