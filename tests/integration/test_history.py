"""The run history in the real daemon: runs survive restarts and kill -9, expectations and
`overdue` with real short runs, a corrupt, full or locked database degrades /health (200)
without stopping ingest, and two daemons on one Redis share one history."""

from __future__ import annotations

import importlib.util
import os
import stat
import time

import pytest

from tests.dashboard_client import Dashboard
from tests.support import DaemonProcess, fill_disk, locked_by_another, post, wait_for

pytestmark = pytest.mark.integration


def runs(daemon, path="/history"):
    status, _, body = daemon.request("GET", path)
    assert status == 200, body
    return body["runs"]


def health(daemon):
    status, _, body = daemon.request("GET", "/health")
    return status, body


def run_once(daemon, task_id, job, seconds=0.0, status="close"):
    post(daemon, {"task_id": task_id, "status": "start", "meta": {"job": job}})
    if seconds:
        time.sleep(seconds)
    post(daemon, {"task_id": task_id, "status": status})


def test_runs_are_kept_beside_the_state_file_across_a_restart_and_a_kill(tmp_path):
    state = tmp_path / "state.json"
    args = ["--storage-path", str(state)]
    with DaemonProcess(args) as daemon:
        assert f"run history in {tmp_path / 'history.sqlite3'}" in daemon.logs()
        run_once(daemon, "backup:1", "backup")
        run_once(daemon, "backup:2", "backup", status="error")
        wait_for(lambda: len(runs(daemon)) == 2, message="two runs")
        assert daemon.stop() == 0
    database = tmp_path / "history.sqlite3"
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    with DaemonProcess(args) as daemon:
        assert [(r["task_id"], r["status"]) for r in runs(daemon)] == [
            ("backup:2", "error"), ("backup:1", "close")]
        run_once(daemon, "backup:3", "backup")
        wait_for(lambda: len(runs(daemon)) == 3 and health(daemon)[1]["history"]["queued"] == 0,
                 message="the third run written")
        daemon.kill()
    with DaemonProcess(args) as daemon:
        assert len(runs(daemon)) == 3
        summary = daemon.request("GET", "/history/jobs")[2]["jobs"]["backup"]
        assert (summary["runs"], summary["ok"], summary["failed"]) == (3, 2, 1)


def test_without_a_storage_path_the_history_is_in_memory_and_can_be_off():
    with DaemonProcess() as daemon:
        assert "run history is kept in memory" in daemon.logs()
        run_once(daemon, "t", "j")
        wait_for(lambda: len(runs(daemon)) == 1, message="a run")
    with DaemonProcess(["--history-max-runs", "0"]) as daemon:
        assert "run history is off" in daemon.logs()
        assert daemon.request("GET", "/history")[0] == 404


def test_overdue_turns_on_for_a_late_run_and_reaches_the_dashboard(tmp_path):
    args = ["--cleanup-interval", "0.1", "--overdue-factor", "1.5", "--broadcast-interval", "0.02"]
    with DaemonProcess(args) as daemon:
        for night in range(3):
            run_once(daemon, f"etl:{night}", "etl", seconds=0.3)
        wait_for(lambda: len(runs(daemon)) == 3, message="three close runs")
        dashboard = Dashboard(daemon.ws_url + "/ws?protocol=delta")
        try:
            started = time.monotonic()
            post(daemon, {"task_id": "etl:tonight", "status": "start", "meta": {"job": "etl"}})
            task = wait_for(lambda: daemon.request("GET", "/tasks/etl:tonight")[2].get(
                "expected_duration") and daemon.request("GET", "/tasks/etl:tonight")[2],
                message="an expected duration")
            assert 0.3 <= task["expected_duration"] < 1.0 and task["overdue"] is False
            p90 = max(run["duration"] for run in runs(daemon))
            dashboard.wait_until(lambda tasks: tasks.get("etl:tonight", {}).get("overdue"),
                                 timeout=10, what="overdue on the dashboard")
            assert time.monotonic() - started > 1.5 * p90
            post(daemon, {"task_id": "etl:tonight", "status": "close"})
            dashboard.wait_until(lambda tasks: "overdue" not in tasks.get("etl:tonight", {"overdue": 1}),
                                 timeout=10, what="the flag gone with the run")
        finally:
            dashboard.close()


def test_a_corrupt_database_is_moved_aside_at_start_and_runs_go_on(tmp_path):
    database = tmp_path / "history.sqlite3"
    database.write_bytes(b"this is not a database" * 100)
    with DaemonProcess(["--history-path", str(database)]) as daemon:
        run_once(daemon, "t", "j")
        wait_for(lambda: len(runs(daemon)) == 1, message="a run in the new database")
        status, report = health(daemon)
        assert status == 200 and report["status"] == "ok"
        assert "moved it to" in report["history"]["last_fault"]
        aside = [name for name in os.listdir(tmp_path) if name != "history.sqlite3"
                 and name.startswith("history.sqlite3") and not name.endswith(("-wal", "-shm"))]
        assert len(aside) == 1, os.listdir(tmp_path)
        assert (tmp_path / aside[0]).read_bytes().startswith(b"this is not a database")
        assert "Traceback" not in daemon.logs()


def degraded_then_ok(daemon, make_fault, clear_fault, reason):
    """Health 200 "degraded" naming `reason` while the fault lasts, ingest unaffected, then ok
    with every run written."""
    run_once(daemon, "before", "j")
    wait_for(lambda: len(runs(daemon)) == 1, message="a first run")
    make_fault()
    try:
        run_once(daemon, "during", "j")
        status, report = wait_for(lambda: health(daemon)[1]["status"] == "degraded" and health(
            daemon), timeout=20, message="/health degraded")
        assert status == 200 and report["history"]["ok"] is False
        assert reason in report["history"]["error"]
        assert post(daemon, {"task_id": "still-taken", "n": 1})["ok"] is True
        assert daemon.request("GET", "/tasks/still-taken")[2]["n"] == 1
    finally:
        clear_fault()
    wait_for(lambda: health(daemon)[1]["status"] == "ok", timeout=60, message="/health ok again")
    wait_for(lambda: len(runs(daemon, "/history?job=j")) == 2,
             message="the run kept in memory, written")


def test_a_locked_database_degrades_with_200_and_recovers(tmp_path):
    database = tmp_path / "history.sqlite3"
    with DaemonProcess(["--history-path", str(database)]) as daemon:
        lock = locked_by_another(database)
        degraded_then_ok(daemon, lock.__enter__, lambda: lock.__exit__(None, None, None),
                         "locked")


def test_a_full_disk_degrades_with_200_and_recovers(small_disk):
    database = small_disk / "history.sqlite3"
    with DaemonProcess(["--history-path", str(database)]) as daemon:
        fillers = []

        def fill():
            fillers.append(fill_disk(small_disk))
            # Runs big enough that the next write needs pages the disk no longer has.
            post(daemon, [{"task_id": f"big:{i}", "status": "error", "desc": "d" * 1000,
                           "meta": {"job": "big", "pad": "p" * 4000}} for i in range(100)])

        degraded_then_ok(daemon, fill, lambda: fillers[0].unlink(), "full")
        wait_for(lambda: len(runs(daemon, "/history?job=big&limit=1000")) == 100,
                 message="the big runs written")


@pytest.mark.skipif(importlib.util.find_spec("redis") is None, reason="needs redis-py")
def test_two_daemons_on_one_redis_share_the_history(daemon_factory, redis_server, redis_prefix):
    common = ["--redis-url", redis_server.url, "--redis-prefix", redis_prefix,
              "--cleanup-interval", "0.2"]
    one, two = daemon_factory(common), daemon_factory(common)
    run_once(one, "a", "nightly")
    run_once(two, "b", "nightly", status="error")
    wait_for(lambda: len(runs(one)) == len(runs(two)) == 2, message="both runs on both")
    time.sleep(0.5)
    assert runs(one) == runs(two)
    assert one.request("GET", "/history/jobs")[2] == two.request("GET", "/history/jobs")[2]
    assert one.request("GET", "/history/jobs")[2]["jobs"]["nightly"]["runs"] == 2
    post(one, {"task_id": "c", "status": "start", "meta": {"job": "nightly"}})
    assert two.request("DELETE", "/tasks/c")[2] == {"removed": True}
    wait_for(lambda: len(runs(one)) == 3, message="the abandoned run")
    time.sleep(0.5)
    assert [run["status"] for run in runs(two, "/history?job=nightly")] == [
        "abandoned", "error", "close"], "each run recorded once, by the daemon that ended it"
