"""The stream follower: a daemon back from an outage catches up from the stream, or resyncs
when the stream no longer reaches back far enough. Real redis-server, no daemon."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("redis")

from progressistad.cluster.follower import StreamFollower  # noqa: E402
from progressistad.cluster.link import Link  # noqa: E402
from progressistad.cluster.mirror import TaskMirror  # noqa: E402
from progressistad.cluster.store import RedisTaskStore, connect  # noqa: E402


def progress(i):
    return {"task_id": f"t{i % 50}", "n": i}


def run_follower(url, prefix, maxlen, writes_while_away, event=progress):
    async def scenario():
        writer = RedisTaskStore(connect(url, 5.0), prefix, stream_maxlen=maxlen)
        reader = RedisTaskStore(connect(url, 5.0), prefix, stream_maxlen=maxlen)
        announced = []
        follower = StreamFollower(writer, reader, TaskMirror(), Link(), announced.append)
        try:
            await writer.apply([{"task_id": "first", "n": 1}], 1.0, 100)
            await follower.resync()
            for i in range(writes_while_away):
                await writer.apply([event(i)], 2.0 + i, 100)
            await writer.remove("first")
            await follower._reconnect()
            while True:
                before = follower.last_id
                await follower._follow_once()
                if follower.last_id == before:
                    break
            expected = {tid: task.to_wire() for tid, task in (await reader.view())[0].items()}
            return follower.resyncs, follower.mirror.snapshot(), expected, announced
        finally:
            await writer.close()
            await reader.close()

    return asyncio.run(scenario())


def test_catches_up_from_the_stream_without_a_resync(redis_server, redis_prefix):
    resyncs, mirror, expected, announced = run_follower(redis_server.url, redis_prefix, 10000, 30)
    assert resyncs == 1, "only the initial load"
    assert mirror == expected and "first" not in mirror
    assert any("first" in changes.removed for changes in announced)


def test_resyncs_when_the_stream_was_trimmed_past_it(redis_server, redis_prefix):
    resyncs, mirror, expected, _ = run_follower(redis_server.url, redis_prefix, 10, 400)
    assert resyncs == 2, "the initial load and one resync"
    assert mirror == expected and len(mirror) == 50


def with_telemetry(i):
    """Every third event sends metrics, every fifth a postfix and log lines; the others none."""
    event = progress(i)
    if i % 3 == 0:
        event["metrics"] = {"loss": 1.0 / (i + 1), f"m{i % 4}": i, "gone": None}
    if i % 5 == 0:
        event.update(postfix=f"step {i}", log=[f"line {i}", f"line {i}b"])
    return event


def test_a_mirror_keeps_telemetry_through_writes_that_leave_it(redis_server, redis_prefix):
    resyncs, mirror, expected, _ = run_follower(redis_server.url, redis_prefix, 10000, 120,
                                                with_telemetry)
    assert resyncs == 1 and mirror == expected
    assert mirror["t0"]["metrics"] and mirror["t0"]["postfix"] and mirror["t0"]["log_lines"] == 6
    assert mirror["t1"]["metrics"] is None or mirror["t1"]["metrics"]["loss"] > 0
