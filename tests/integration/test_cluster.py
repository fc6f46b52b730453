"""Several real daemons sharing one real redis-server: one view, fan-out, cleanup once, failures."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time

import pytest

redis = pytest.importorskip("redis")

from progressistad.cluster.store import decode_entry  # noqa: E402
from tests.dashboard_client import Dashboard  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402
from tests.support import (  # noqa: E402
    REPO, DaemonProcess, NotifySocket, clean_env, free_port, wait_for,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def group(daemon_factory, redis_server, redis_prefix):
    """`group(n, *args, server=None)`: n daemons on one Redis and one key prefix."""
    def start(count=2, *args, server=None):
        url = (server or redis_server).url
        return [daemon_factory(["--redis-url", url, "--redis-prefix", redis_prefix,
                                "--broadcast-interval", "0.05", *args])
                for _ in range(count)]
    return start


@pytest.fixture
def dashboards():
    opened = []

    def open_on(daemon, query="?protocol=delta"):
        dashboard = Dashboard(daemon.ws_url + "/ws" + query)
        opened.append(dashboard)
        return dashboard

    yield open_on
    for dashboard in opened:
        dashboard.close()


def stream_changes(server, prefix):
    """(upserted tasks, removed ids) of every entry in the group's change stream."""
    client = redis.Redis.from_url(server.url)
    try:
        entries = client.xrange(prefix + "events")
    finally:
        client.close()
    changes = [decode_entry(fields) for _, fields in entries]
    return [([task.to_wire() for task in upserted], removed) for upserted, removed in changes]


def health(daemon):
    status, _, body = daemon.request("GET", "/health")
    return status, body


def test_an_event_posted_to_a_reaches_a_dashboard_on_b(group, dashboards):
    a, b = group(2)
    on_b = dashboards(b)
    on_b_snapshots = dashboards(b, "")
    status, _, _ = a.request("POST", "/progress", {"task_id": "job", "n": 7, "total": 10})
    assert status == 200
    on_b.wait_until(lambda s: s.get("job", {}).get("n") == 7, what="job on B (delta)")
    on_b_snapshots.wait_until(lambda s: s.get("job", {}).get("n") == 7, what="job on B (snapshot)")
    assert b.request("GET", "/tasks/job")[2]["total"] == 10
    assert b.request("DELETE", "/tasks/job")[2] == {"removed": True}
    dashboards(a).wait_until(lambda s: "job" not in s, what="removal on A")


def test_concurrent_partial_updates_through_both_daemons_end_right(group):
    a, b = group(2)
    fields = [(a, "desc", lambda i: f"d{i}"), (b, "unit", lambda i: f"u{i}"),
              (a, "n", lambda i: i), (b, "timestamp", lambda i: float(i))]
    rounds = 40
    failures = []

    def writer(daemon, name, value):
        for i in range(rounds):
            status, _, body = daemon.request("POST", "/progress", {"task_id": "same", name: value(i)})
            if status != 200:
                failures.append((status, body))

    threads = [threading.Thread(target=writer, args=spec) for spec in fields]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures
    expected = {"desc": f"d{rounds - 1}", "unit": f"u{rounds - 1}", "n": rounds - 1,
                "timestamp": float(rounds - 1)}
    for daemon in (a, b):
        task = daemon.request("GET", "/tasks/same")[2]
        assert {name: task[name] for name in expected} == expected
    # Both mirrors converge on the same record, so /health counts agree too.
    wait_for(lambda: health(a)[1]["tasks"] == health(b)[1]["tasks"] == 1, message="mirrors")


def test_cleanup_runs_once_for_the_group(group, dashboards, redis_server, redis_prefix):
    a, b = group(2, "--cleanup-interval", "0.2", "--stale-seconds", "1", "--retention-seconds", "1")
    on_a, on_b = dashboards(a), dashboards(b)
    a.request("POST", "/progress", [{"task_id": "idle", "status": "start"},
                                    {"task_id": "done", "status": "close"}])
    for dashboard in (on_a, on_b):
        dashboard.wait_until(lambda s: s.get("idle", {}).get("status") == "stale"
                             and "done" not in s, what="stale and retention sweep")
    # Give every daemon's timer several more ticks: nothing may be announced twice.
    time.sleep(1.0)
    changes = stream_changes(redis_server, redis_prefix)
    stale = [tasks for tasks, _ in changes if any(t["status"] == "stale" for t in tasks)]
    removals = [removed for _, removed in changes if "done" in removed]
    assert len(stale) == 1, stale
    assert len(removals) == 1, removals
    leaders = [health(daemon)[1]["redis"]["cleanup_leader"] for daemon in (a, b)]
    assert sorted(leaders) == [False, True], "exactly one daemon holds the cleanup lease"


def test_daemon_a_killed_b_keeps_serving_everything(group, dashboards):
    a, b = group(2, "--cleanup-interval", "0.2", "--stale-seconds", "2")
    on_b = dashboards(b)
    a.request("POST", "/progress", [{"task_id": f"t{i}", "n": i} for i in range(20)])
    a.kill()
    assert len(b.request("GET", "/tasks")[2]["tasks"]) == 20
    assert b.request("POST", "/progress", {"task_id": "t3", "n": 99})[0] == 200
    on_b.wait_until(lambda s: len(s) == 20 and s["t3"]["n"] == 99, what="B's own update")
    # Whoever held the cleanup lease, B sweeps once it has expired.
    on_b.wait_until(lambda s: s["t0"]["status"] == "stale", timeout=20, what="stale via B")
    assert health(b)[0] == 200


def test_redis_lost_then_back_degrades_then_recovers_and_resyncs(daemon_factory, dashboards):
    server = RedisServer().start()
    notify = NotifySocket()
    try:
        args = ["--redis-url", server.url, "--broadcast-interval", "0.05"]
        a = daemon_factory(args, {"NOTIFY_SOCKET": notify.path})
        b = daemon_factory(args)
        on_a, on_b = dashboards(a), dashboards(b, "")
        a.request("POST", "/progress", {"task_id": "before", "n": 1})
        on_b.wait_until(lambda s: "before" in s, what="first task")
        server.stop()
        for daemon in (a, b):
            status, report = wait_for(lambda d=daemon: _degraded(d), timeout=20,
                                      message="degraded /health")
            assert report["redis"]["ok"] is False and "Redis" in report["redis"]["error"]
        status, headers, body = a.request("POST", "/progress", {"task_id": "lost"})
        assert status == 503 and int(headers["Retry-After"]) >= 1 and "error" in body
        notify.wait_for(lambda m: m.startswith("STATUS=") and "Redis unreachable" in m,
                        what="STATUS= naming Redis")
        server.start()
        for daemon in (a, b):
            wait_for(lambda d=daemon: health(d)[0] == 200, timeout=20, message="recovered /health")
        notify.wait_for(lambda m: m.startswith("STATUS=") and "Redis" not in m,
                        what="STATUS= without the problem")
        # Redis came back empty: the dashboards drop the task it no longer has.
        on_a.wait_until(lambda s: "before" not in s, what="resync on A")
        on_b.wait_until(lambda s: "before" not in s, what="resync on B")
        assert a.request("POST", "/progress", {"task_id": "after", "n": 2})[0] == 200
        on_b.wait_until(lambda s: s.get("after", {}).get("n") == 2, what="fan-out after recovery")
        assert "lost" not in b.request("GET", "/tasks")[2]["tasks"]
    finally:
        server.stop()
        notify.close()


def test_frozen_redis_shows_in_health_within_about_a_second_then_recovers(daemon_factory, dashboards):
    server = RedisServer().start()
    try:
        daemon = daemon_factory(["--redis-url", server.url, "--broadcast-interval", "0.05"])
        on_dash = dashboards(daemon)
        daemon.request("POST", "/progress", {"task_id": "before", "n": 1})
        on_dash.wait_until(lambda s: "before" in s, what="first task")
        server.proc.send_signal(signal.SIGSTOP)
        stopped = time.monotonic()
        status, report = wait_for(lambda: _degraded(daemon), timeout=10, interval=0.05,
                                  message="degraded /health")
        noticed = time.monotonic() - stopped
        # The probe's period plus its timeout, with room for a loaded machine; writes time out at 3 s.
        assert noticed < 2.5, f"/health said nothing for {noticed:.2f}s"
        assert report["redis"]["ok"] is False and "ping" in report["redis"]["error"]
        server.proc.send_signal(signal.SIGCONT)
        wait_for(lambda: health(daemon)[0] == 200, timeout=20, message="recovered /health")
        assert daemon.request("POST", "/progress", {"task_id": "after", "n": 2})[0] == 200
        on_dash.wait_until(lambda s: s.get("after", {}).get("n") == 2 and "before" in s,
                           what="updates after the freeze")
    finally:
        if server.proc is not None and server.proc.poll() is None:
            server.proc.send_signal(signal.SIGCONT)
        server.stop()


def _degraded(daemon):
    status, report = health(daemon)
    return (status, report) if status == 503 and report["status"] == "degraded" else None


def test_unreachable_redis_at_start_exits_1_with_one_line():
    url = f"redis://127.0.0.1:{free_port()}/0"
    proc = subprocess.run(
        [sys.executable, "-m", "progressistad", "--host", "127.0.0.1", "--port", str(free_port()),
         "--redis-url", url], env=clean_env(), cwd=REPO, capture_output=True, text=True, timeout=30)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1
    assert len(lines) == 1 and "cannot reach Redis at " + url in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_redis_wait_keeps_trying_until_redis_answers():
    server = RedisServer()
    daemon = DaemonProcess(["--redis-url", server.url, "--redis-wait", "60"])
    try:
        daemon.start(wait=False)
        wait_for(lambda: "waiting for Redis" in daemon.logs(), timeout=20, message="retry log")
        assert daemon.proc.poll() is None, daemon.logs()
        server.start()
        daemon.wait_ready(30)
        assert health(daemon)[0] == 200
    finally:
        daemon.__exit__(None, None, None)
        server.stop()


def test_import_state_loads_ours_and_the_earlier_builds_files(group, tmp_path, redis_server,
                                                              redis_prefix, dashboards):
    (a,) = group(1)
    on_a = dashboards(a)
    ours = {"version": 2, "saved_at": 1.0, "tasks": {
        "run": {"task_id": "run", "n": 5, "total": 10, "status": "update", "desc": "é ✓",
                "created_at": 100.0, "updated_at": 110.0, "meta": {"k": [1, 2]},
                "metrics": {"loss": 0.25}, "postfix": "loss=0.25", "last_log": "two",
                "log_lines": 2, "log_tail": ["one", "two"]},
        "done": {"task_id": "done", "n": 10, "total": 10, "status": "close",
                 "created_at": 100.0, "updated_at": 120.0, "done_at": 120.0}}}
    earlier = {"version": "0.2.1", "saved_at": 1.0, "tasks": {
        "old": {"task_id": "old", "n": 1, "status": "start", "updated_at": 90.0}}}
    for name, content in (("ours.json", ours), ("earlier.json", earlier)):
        path = tmp_path / name
        path.write_text(json.dumps(content))
        proc = subprocess.run(
            [sys.executable, "-m", "progressistad", "--import-state", str(path),
             "--redis-url", redis_server.url, "--redis-prefix", redis_prefix],
            env=clean_env(), cwd=REPO, capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0, proc.stderr
        assert "imported" in proc.stdout
    state = on_a.wait_until(lambda s: {"run", "done", "old"} <= set(s), what="imported tasks")
    assert state["run"]["status"] == "recovered" and state["run"]["desc"] == "é ✓"
    assert state["run"]["meta"] == {"k": [1, 2]}
    assert state["done"]["status"] == "close" and state["old"]["status"] == "recovered"
    assert a.request("GET", "/tasks/old")[2]["n"] == 1
    assert (state["run"]["metrics"], state["run"]["postfix"]) == ({"loss": 0.25}, "loss=0.25")
    assert (state["run"]["last_log"], state["run"]["log_lines"]) == ("two", 2)
    assert a.request("GET", "/tasks/run/log")[2] == {"task_id": "run", "lines": ["one", "two"]}
    assert a.request("GET", "/tasks/done/log")[2]["lines"] == []


def test_import_state_refuses_a_bad_file_with_one_line(tmp_path, redis_server):
    path = tmp_path / "bad.json"
    path.write_text('{"tasks": {"x": {"n": "many"}}}')
    proc = subprocess.run(
        [sys.executable, "-m", "progressistad", "--import-state", str(path),
         "--redis-url", redis_server.url], env=clean_env(), cwd=REPO, capture_output=True,
        text=True, timeout=30)
    assert proc.returncode == 1 and "'n' must be a number" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_a_redis_url_that_is_not_one_is_a_configuration_error():
    proc = subprocess.run([sys.executable, "-m", "progressistad", "--redis-url", "localhost:6379"],
                          env=clean_env(), cwd=REPO, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "--redis-url" in proc.stderr and "redis://" in proc.stderr
