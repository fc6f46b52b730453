"""The run history over real HTTP, on both stores: runs recorded as tasks end, the routes,
expectations and `overdue` with a fake clock, retention, /health and /metrics."""

from __future__ import annotations

import asyncio
import urllib.parse

import pytest

from progressistad import contract
from tests.http.test_websocket import connect, read_json, read_until
from tests.support import locked_by_another

pytestmark = pytest.mark.gen_test(timeout=30)


async def cleanup(services):
    """One cleanup pass as the daemon's timer runs it."""
    await services.ctx.service.sweep()
    await services.after_sweep()


async def history(api, path="/history", count=None, timeout=10.0):
    """The answer to GET `path`; with `count`, once it holds that many runs (writes are queued)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        status, _, body = await api.call("GET", path)
        assert status == 200, body
        if count is None or len(body["runs"]) >= count:
            return body
        if loop.time() > deadline:
            raise AssertionError(f"{path}: {len(body['runs'])} runs, not {count}")
        await asyncio.sleep(0.02)


def outcomes(body):
    return {(run["task_id"], run["status"], run["duration"]) for run in body["runs"]}


async def test_close_error_and_abandonment_are_recorded_with_their_durations(api, clock):
    for task_id in "abcde":
        await api.post({"task_id": task_id, "status": "start", "total": 10})
    clock.advance(30)
    await api.post([{"task_id": "a", "status": "close", "n": 10},
                    {"task_id": "b", "status": "error", "n": 3},
                    {"task_id": "e", "status": "update", "n": 4}])
    clock.advance(10)
    await api.call("DELETE", "/tasks/c")
    await api.call("DELETE", "/tasks?older_than=35")  # d: idle since the start
    await api.post({"task_id": "e", "status": "start", "n": 0})  # e ran on, then began again
    body = await history(api, count=5)
    assert outcomes(body) == {("a", "close", 30), ("b", "error", 30), ("c", "abandoned", 0),
                              ("d", "abandoned", 0), ("e", "abandoned", 30)}
    abandoned = next(run for run in body["runs"] if run["task_id"] == "e")
    assert abandoned["n"] == 4, "the run a start abandons is the task as it was before"
    assert [run["ended_at"] for run in body["runs"]] == sorted(
        (run["ended_at"] for run in body["runs"]), reverse=True)
    assert set(body["runs"][0]) == set(contract.RUN_FIELDS) and body["next"] is None
    _, _, task = await api.call("GET", "/tasks/e")
    assert task["status"] == "start", "the task itself goes on"


async def test_a_reactivated_task_is_a_new_run_and_a_repeated_close_is_none(api, clock):
    await api.post({"task_id": "t", "status": "start"})
    clock.advance(5)
    await api.post({"task_id": "t", "status": "close"})
    await api.post({"task_id": "t", "status": "close"})
    clock.advance(5)
    await api.post({"task_id": "t", "n": 1})
    clock.advance(7)
    await api.post({"task_id": "t", "status": "close"})
    body = await history(api, count=2)
    assert sorted((run["started_at"] - clock.now, run["duration"]) for run in body["runs"]) == [
        (-17, 5), (-7, 7)]


@pytest.mark.settings(stale_seconds=10, max_task_age=100)
async def test_cleanup_marks_stale_without_a_run_then_removes_as_abandoned(api, clock, services):
    await api.post({"task_id": "quiet", "status": "start", "meta": {"job": "sync"}})
    clock.advance(3)
    await api.post({"task_id": "quiet", "n": 2})
    clock.advance(20)
    await cleanup(services)
    assert (await api.call("GET", "/tasks/quiet"))[2]["status"] == "stale"
    assert (await history(api))["runs"] == []
    clock.advance(200)
    await cleanup(services)
    (run,) = (await history(api, count=1))["runs"]
    assert (run["job"], run["status"], run["duration"], run["n"]) == ("sync", "abandoned", 3, 2)


@pytest.mark.settings(max_tasks=2)
async def test_eviction_of_a_finished_task_records_no_second_run(api, clock):
    await api.post({"task_id": "old", "status": "start"})
    clock.advance(4)
    await api.post({"task_id": "old", "status": "close"})
    await api.post([{"task_id": "x"}, {"task_id": "y"}])
    assert (await api.call("GET", "/tasks/old"))[0] == 404
    await asyncio.sleep(0.2)
    assert outcomes(await history(api, count=1)) == {("old", "close", 4)}


@pytest.mark.settings(history_children=False)
async def test_child_bars_are_not_recorded_unless_asked(api, clock):
    await api.post([{"task_id": "parent", "status": "start"},
                    {"task_id": "child", "status": "start", "meta": {"parent_id": "parent"}}])
    clock.advance(1)
    await api.post([{"task_id": "child", "status": "close"}, {"task_id": "parent", "status": "close"}])
    assert outcomes(await history(api, count=1)) == {("parent", "close", 1)}


async def finish_runs(api, clock, job, durations, status="close"):
    """One task per duration, each run of `job` finished `status`."""
    for i, duration in enumerate(durations):
        task_id = f"{job}:host:{i}"
        await api.post({"task_id": task_id, "status": "start", "meta": {"job": job}})
        clock.advance(duration)
        await api.post({"task_id": task_id, "status": status})
        clock.advance(1)


async def test_filters_and_the_cursor_page_through_runs_newest_first(api, clock):
    await finish_runs(api, clock, "nightly", [10, 20, 30, 40, 50])
    await finish_runs(api, clock, "other", [5], status="error")
    everything = await history(api, count=6)
    assert len(everything["runs"]) == 6
    seen, path = [], "/history?job=nightly&limit=2"
    while True:
        page = await history(api, path)
        seen += [run["duration"] for run in page["runs"]]
        if page["next"] is None:
            break
        path = "/history?" + urllib.parse.urlencode({"job": "nightly", "limit": 2,
                                                     "cursor": page["next"]})
    assert seen == [50, 40, 30, 20, 10]
    assert [run["job"] for run in (await history(api, "/history?status=error"))["runs"]] == ["other"]
    third = everything["runs"][3]["ended_at"]
    window = await history(api, f"/history?since={third}&until={everything['runs'][1]['ended_at']}")
    assert [run["ended_at"] for run in window["runs"]] == [everything["runs"][2]["ended_at"], third]


async def test_jobs_summarise_outcomes_and_durations(api, clock):
    await finish_runs(api, clock, "nightly", [100, 120, 110])
    await finish_runs(api, clock, "nightly", [7], status="error")
    await finish_runs(api, clock, "weekly", [3])
    await history(api, count=5)
    status, _, body = await api.call("GET", "/history/jobs?job=night*")
    assert status == 200 and list(body["jobs"]) == ["nightly"] and body["next"] is None
    nightly = body["jobs"]["nightly"]
    assert (nightly["runs"], nightly["ok"], nightly["failed"]) == (4, 3, 1)
    assert nightly["duration"] == {"median": 110, "p90": 120}
    assert nightly["last"]["status"] == "error" and nightly["last"]["duration"] == 7
    _, _, first = await api.call("GET", "/history/jobs?limit=1")
    assert list(first["jobs"]) == ["nightly"] and first["next"]
    _, _, rest = await api.call("GET", "/history/jobs?" + urllib.parse.urlencode(
        {"cursor": first["next"]}))
    assert list(rest["jobs"]) == ["weekly"] and rest["next"] is None


async def test_delete_needs_a_filter_and_removes_what_matches(api, clock):
    await finish_runs(api, clock, "nightly", [1, 2])
    await finish_runs(api, clock, "weekly", [3])
    await history(api, count=3)
    status, _, body = await api.call("DELETE", "/history")
    assert status == 400 and "filter" in body["error"]
    assert (await api.call("DELETE", "/history?job=nightly"))[2] == {"removed": 2}
    assert outcomes(await history(api)) == {("weekly:host:0", "close", 3)}
    clock.advance(100)
    assert (await api.call("DELETE", "/history?older_than=1000"))[2] == {"removed": 0}
    assert (await api.call("DELETE", "/history?older_than=10"))[2] == {"removed": 1}


@pytest.mark.parametrize("path, field", [
    ("/history?limit=0", "limit"),
    ("/history?limit=1001", "limit"),
    ("/history?limit=ten", "limit"),
    ("/history?since=yesterday", "since"),
    ("/history?until=nan", "until"),
    ("/history?status=stale", "status"),
    ("/history?cursor=bm9wZQ", "cursor"),
    ("/history?job=", "job"),
    ("/history?job=a&job=b", "job"),
    ("/history?jobs=a", "jobs"),
    ("/history/jobs?job=%5Bx", "job"),
    ("/history/jobs?cursor=x", "cursor"),
    ("/history/jobs?status=close", "status"),
])
async def test_a_bad_parameter_is_a_400_naming_it(api, path, field):
    status, headers, body = await api.call("GET", path)
    assert status == 400 and body["field"] == field, body
    assert headers["Content-Type"].startswith("application/json")


@pytest.mark.parametrize("path, field", [("/history?older_than=-1", "older_than"),
                                         ("/history?older_than=x", "older_than"),
                                         ("/history?status=close", "status")])
async def test_a_bad_delete_parameter_is_a_400_naming_it(api, path, field):
    status, _, body = await api.call("DELETE", path)
    assert status == 400 and body["field"] == field, body


@pytest.mark.settings(overdue_factor=1.5)
async def test_expected_duration_after_three_close_runs_and_overdue_past_the_factor(
        api, clock, services):
    await finish_runs(api, clock, "nightly", [100, 120])
    await api.post({"task_id": "tonight", "status": "start", "meta": {"job": "nightly"}})
    task = (await api.call("GET", "/tasks/tonight"))[2]
    assert "expected_duration" not in task and "overdue" not in task, "two runs are not enough"
    await api.post({"task_id": "tonight", "status": "close"})
    await finish_runs(api, clock, "nightly", [110])
    await history(api, count=4)
    await asyncio.sleep(0.05)

    conn = await connect(api, "?protocol=delta")
    await read_json(conn)
    await api.post({"task_id": "tonight", "status": "start", "meta": {"job": "nightly"}})
    started = clock.now
    task = (await api.call("GET", "/tasks/tonight"))[2]
    # Close runs of 100, 120, 110 and 0 (the one closed at once): median 100, p90 120.
    assert (task["expected_duration"], task["overdue"]) == (100, False)
    clock.advance(179.5)
    await cleanup(services)
    assert (await api.call("GET", "/tasks/tonight"))[2]["overdue"] is False
    clock.advance(1)
    await cleanup(services)
    task = (await api.call("GET", "/tasks/tonight"))[2]
    assert task["overdue"] is True and clock.now - started > 1.5 * 120
    seen = await read_until(conn, lambda m: m.get("tasks", {}).get("tonight", {}).get("overdue"))
    assert seen[-1]["type"] == "delta", "the flag reaches dashboards like any change"
    assert (await api.call("GET", "/tasks"))[2]["tasks"]["tonight"]["overdue"] is True
    await api.post({"task_id": "tonight", "status": "close"})
    task = (await api.call("GET", "/tasks/tonight"))[2]
    assert "expected_duration" not in task and "overdue" not in task
    conn.close()


async def test_an_expectation_reaches_running_tasks_at_the_cleanup_pass_after_it_comes(
        api, clock, services):
    await finish_runs(api, clock, "nightly", [10, 20])
    await api.post({"task_id": "early", "status": "start", "meta": {"job": "nightly"}})
    await finish_runs(api, clock, "nightly", [30])
    await history(api, count=3)
    await cleanup(services)
    assert (await api.call("GET", "/tasks/early"))[2]["expected_duration"] == 20, \
        "the running task got its job's expectation at the next cleanup pass"


@pytest.mark.settings(history_max_runs=3)
async def test_retention_by_count(api, clock, services):
    await finish_runs(api, clock, "j", [1, 2, 3, 4, 5])
    await cleanup(services)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while True:
        durations = [run["duration"] for run in (await history(api))["runs"]]
        if durations == [5, 4, 3]:
            break
        assert loop.time() < deadline, durations
        await cleanup(services)
        await asyncio.sleep(0.05)


@pytest.mark.settings(history_retention_days=1, retention_seconds=0)
async def test_retention_by_age(api, clock, services):
    await finish_runs(api, clock, "j", [1])
    clock.advance(86400 - 100)
    await finish_runs(api, clock, "j", [2])
    await history(api, count=2)
    clock.advance(200)
    await cleanup(services)
    assert [run["duration"] for run in (await history(api))["runs"]] == [2]


@pytest.mark.settings(history_max_runs=0)
async def test_with_the_history_off_its_routes_say_so(api, ctx):
    for method, path in (("GET", "/history"), ("GET", "/history/jobs"),
                         ("DELETE", "/history?job=x")):
        status, _, body = await api.call(method, path)
        assert status == 404 and "off" in body["error"]
    assert "history" not in (await api.call("GET", "/health"))[2]
    await api.post({"task_id": "t", "status": "close"})
    assert "expected_duration" not in (await api.call("GET", "/tasks/t"))[2]


async def test_health_reports_the_history_and_metrics_show_each_job(api, clock):
    await finish_runs(api, clock, "nightly", [100, 120, 110])
    await finish_runs(api, clock, "nightly", [5], status="error")
    await history(api, count=4)
    status, _, report = await api.call("GET", "/health")
    assert status == 200 and report["history"]["ok"] is True
    status, _, text = await api.call("GET", "/metrics")
    assert status == 200
    samples = dict(line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))
    values = {name: float(value) for name, value in samples.items()}
    assert values['progressista_history_runs{job="nightly",status="close"}'] == 3
    assert values['progressista_history_runs{job="nightly",status="error"}'] == 1
    assert values['progressista_history_runs{job="nightly",status="abandoned"}'] == 0
    assert values['progressista_history_last_duration_seconds{job="nightly"}'] == 5
    assert values['progressista_history_close_duration_seconds{job="nightly",quantile="0.5"}'] == 110
    assert values['progressista_history_close_duration_seconds{job="nightly",quantile="0.9"}'] == 120
    last_close = values['progressista_history_last_end_timestamp_seconds'
                        '{job="nightly",status="close"}']
    last_error = values['progressista_history_last_end_timestamp_seconds'
                        '{job="nightly",status="error"}']
    assert last_close < last_error < clock.now
    assert 'progressista_history_last_end_timestamp_seconds{job="nightly",status="abandoned"}' \
        not in values
    assert values["progressista_history_queued_runs"] == 0
    assert values["progressista_history_jobs_capped"] == 0


@pytest.mark.settings(metrics_max_jobs=1)
async def test_metrics_show_at_most_max_jobs(api, clock):
    await finish_runs(api, clock, "a", [1])
    await finish_runs(api, clock, "b", [1])
    await history(api, count=2)
    text = (await api.call("GET", "/metrics"))[2]
    assert 'job="a"' in text and 'job="b"' not in text
    assert "progressista_history_jobs_capped 1" in text.splitlines()


@pytest.fixture
def history_file(store_kind, tmp_path):
    if store_kind == "redis":
        pytest.skip("with --redis-url the history lives in Redis")
    return tmp_path / "history.sqlite3"


@pytest.fixture
def settings(settings, request):
    """The module's settings, with `history_file` as --history-path when a test asks for it."""
    if "history_file" in request.fixturenames:
        return settings.replace(history_path=str(request.getfixturevalue("history_file")))
    return settings


async def test_a_locked_database_degrades_health_with_200_and_ingest_goes_on(
        api, clock, history_file):
    await finish_runs(api, clock, "j", [1])
    await history(api, count=1)
    with locked_by_another(history_file):
        await finish_runs(api, clock, "j", [2])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while True:
            status, _, report = await api.call("GET", "/health")
            if report["status"] == "degraded":
                break
            assert loop.time() < deadline, report
            await asyncio.sleep(0.05)
        assert status == 200 and report["history"]["ok"] is False
        assert "locked" in report["history"]["error"] and report["history"]["queued"] == 1
        assert (await api.post({"task_id": "still", "n": 1}))[0] == 200
        assert (await api.call("GET", "/history"))[0] in (200, 503)
    assert len((await history(api, count=2))["runs"]) == 2
    deadline = asyncio.get_running_loop().time() + 10
    while (await api.call("GET", "/health"))[2]["status"] != "ok":
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)


async def test_a_broken_state_file_still_answers_503(api, ctx):
    """The rule per part: the task store's own parts are essential, the history is not."""
    ctx.add_health_check("persistence", lambda: {"ok": False, "error": "disk"}, essential=True)
    ctx.add_health_check("history", lambda: {"ok": False, "error": "locked"}, essential=False)
    status, _, report = await api.call("GET", "/health")
    assert status == 503 and report["status"] == "degraded"
    ctx.health_parts.pop("persistence")
    status, _, report = await api.call("GET", "/health")
    assert status == 200 and report["status"] == "degraded" and report["history"]["ok"] is False


async def test_two_daemons_on_one_redis_answer_the_same_and_record_each_run_once(
        store_kind, services, clock):
    if store_kind != "redis":
        pytest.skip("a group of daemons shares Redis")
    from progressistad.daemon import wiring

    other = await wiring.build(services.ctx.settings, clock)
    try:
        one, two = services.ctx, other.ctx
        await one.service.ingest([{"task_id": "t", "status": "start", "meta": {"job": "j"}}])
        clock.advance(9)
        await one.service.ingest([{"task_id": "t", "status": "close"}])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while len((await two.history.runs(job="j"))["runs"]) < 1 or \
                two.service.store.get("t").status != "close":
            assert loop.time() < deadline
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)
        assert await one.history.runs() == await two.history.runs()
        assert (await two.history.jobs())["jobs"]["j"]["runs"] == 1
        assert two.history.backend._backlog.admitted == 0, "the other daemon recorded it again"
    finally:
        await other.close()


async def test_a_reload_applies_the_history_s_retention_and_factor(ctx):
    ctx.apply_settings(ctx.settings.replace(overdue_factor=3.0, history_retention_days=5.0))
    assert ctx.history.overdue_factor == 3.0 and ctx.history.backend.retention_days == 5.0
