"""The Redis backend with real redis-servers: one history shared by two daemons, removals
by both at once, and an outage that degrades and passes."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("redis")

from progressistad.cluster.store import connect  # noqa: E402
from progressistad.history import query  # noqa: E402
from progressistad.history.redis import RedisHistory  # noqa: E402

from tests.history.conftest import run, shut  # noqa: E402
from tests.history.helpers import T0, run as make_run, until  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402

FAST = {"retry_first": 0.05, "retry_most": 0.2}


def pair(url, prefix, clock, **options):
    return [RedisHistory(connect(url, 2.0), prefix, clock=clock, **FAST, **options)
            for _ in range(2)]


def test_two_daemons_answer_the_same_from_one_history(redis_server, redis_prefix, clock):
    async def body():
        one, two = pair(redis_server.url, redis_prefix, clock)
        one.append([make_run("nightly", ended_at=T0 + i, duration=60 + i) for i in range(5)])
        two.append([make_run("backup", "error", ended_at=T0 + 10)])
        await until(lambda: one.health()["queued"] == two.health()["queued"] == 0)
        for arguments in ({}, {"job": "nightly"}, {"status": "error"}):
            assert await one.runs(query.run_query(**arguments)) == \
                await two.runs(query.run_query(**arguments))
        jobs = await two.jobs(query.job_query())
        assert jobs == await one.jobs(query.job_query())
        assert jobs["jobs"]["nightly"]["duration"] == {"median": 62, "p90": 64}
        assert await one.closes(["nightly"]) == await two.closes(["nightly"])
        await shut(one)
        await shut(two)
    run(body())


def test_retention_run_by_two_daemons_at_once_removes_each_run_once(redis_server, redis_prefix,
                                                                      clock):
    async def body():
        one, two = pair(redis_server.url, redis_prefix, clock, max_runs=300, retention_days=0)
        one.append([make_run(f"j{i % 4}", ("close", "error")[i % 3 == 0], ended_at=T0 + i)
                    for i in range(2000)])
        await until(lambda: one.health()["queued"] == 0)
        removed = await asyncio.gather(one.maintain(), two.maintain(), one.maintain())
        assert sum(removed) == 1700
        summary = (await two.jobs(query.job_query()))["jobs"]
        assert sum(job["runs"] for job in summary.values()) == 300
        assert sum(job["ok"] + job["failed"] for job in summary.values()) == 300
        page = await one.runs(query.run_query(limit=1000))
        assert [r["ended_at"] for r in page["runs"]] == [T0 + i for i in range(1999, 1699, -1)]
        assert await one.delete(None, None) == 300
        assert await one.client.keys(redis_prefix + "history:*") == []
        await shut(one)
        await shut(two)
    run(body())


def test_an_outage_keeps_the_runs_waiting_and_writes_them_when_redis_is_back(clock):
    server = RedisServer().start()
    try:
        async def body():
            backend = RedisHistory(connect(server.url, 1.0), "outage:", clock=clock, **FAST)
            backend.append([make_run("j", ended_at=T0)])
            await until(lambda: backend.health()["queued"] == 0)
            server.stop()
            backend.append([make_run("j", ended_at=T0 + i) for i in range(1, 20)])
            await until(lambda: not backend.health()["ok"], what="the outage reported")
            assert "Redis" in backend.health()["error"] and backend.health()["queued"] == 19
            with pytest.raises(query.HistoryUnavailable):
                await backend.runs(query.run_query())
            server.start()  # empty: what was written before is gone with it
            await until(lambda: backend.health()["ok"], what="recovery")
            assert len((await backend.runs(query.run_query()))["runs"]) == 19
            await shut(backend)
        run(body())
    finally:
        server.stop()
