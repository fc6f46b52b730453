"""Persistence with the real daemon: clean stops, crashes, corrupt files, failing disks, old files."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time

import pytest

from tests.support import IN_CI, DaemonProcess, NotifySocket, post, require_tool, wait_for

pytestmark = pytest.mark.integration


def tasks(daemon):
    status, _, body = daemon.request("GET", "/tasks")
    assert status == 200
    return body["tasks"]


def read_state(path):
    try:
        with open(path) as stream:
            return json.load(stream)
    except (OSError, ValueError):
        return None


def many_events(count):
    statuses = ["start", "update", "close", "error"]
    return [{"task_id": f"job-{i}", "n": i, "total": 1000, "desc": f"job {i}", "unit": "B",
             "status": statuses[i % 4], "meta": {"i": i}} for i in range(count)]


def test_sigterm_then_restart_restores_every_task(tmp_path, daemon_factory):
    state = tmp_path / "state.json"
    args = ["--storage-path", str(state), "--persist-interval", "3600"]
    first = daemon_factory(args)
    events = many_events(1200)
    for start in range(0, len(events), 500):
        post(first, events[start:start + 500])
    before = tasks(first)
    assert first.stop(signal.SIGTERM) == 0
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o600
    assert sorted(os.listdir(tmp_path)) == ["state.json"]

    second = daemon_factory(args)
    after = tasks(second)
    assert set(after) == set(before)
    for task_id, task in before.items():
        expected = task["status"] if task["status"] in ("close", "error") else "recovered"
        assert after[task_id]["status"] == expected
        for field in ("n", "total", "desc", "unit", "meta", "created_at", "updated_at", "done_at"):
            assert after[task_id][field] == task[field], (task_id, field)


def test_a_restart_keeps_metrics_postfix_and_log_tails(tmp_path, daemon_factory):
    """SIGTERM, then kill -9 after a persist interval: both restarts keep the telemetry."""
    state = tmp_path / "state.json"
    args = ["--storage-path", str(state), "--persist-interval", "0.2"]
    first = daemon_factory(args)
    lines = [f"epoch {i}: loss {1 / (i + 1):.4f}" for i in range(130)]
    post(first, [{"task_id": "train", "n": 3, "metrics": {"loss": 0.25, "acc": 0.9, "step": 3},
                  "postfix": "loss=0.25, acc=0.9", "log": lines[:50]},
                 {"task_id": "backup", "status": "error", "log": "rsync: failed\nexit 23\n"}])
    post(first, [{"task_id": "train", "log": lines[50:100]}, {"task_id": "train", "log": lines[100:]},
                 {"task_id": "quiet", "n": 1}])
    assert first.stop(signal.SIGTERM) == 0

    second = daemon_factory(args)
    restored = tasks(second)
    assert restored["train"]["metrics"] == {"loss": 0.25, "acc": 0.9, "step": 3}
    assert restored["train"]["postfix"] == "loss=0.25, acc=0.9"
    assert (restored["train"]["last_log"], restored["train"]["log_lines"]) == (lines[-1], 100)
    assert second.request("GET", "/tasks/train/log")[2]["lines"] == lines[-100:]
    assert second.request("GET", "/tasks/backup/log")[2]["lines"] == ["rsync: failed", "exit 23"]
    assert restored["quiet"]["log_lines"] == 0 and restored["quiet"]["metrics"] is None
    post(second, {"task_id": "train", "metrics": {"step": None, "lr": 0.01}, "log": "resumed"})
    wait_for(lambda: "lr" in (((read_state(state) or {}).get("tasks") or {}).get("train") or {})
             .get("metrics", {}), timeout=20, message="a state write with the last event")
    second.kill()

    third = daemon_factory(args)
    train = tasks(third)["train"]
    assert train["metrics"] == {"loss": 0.25, "acc": 0.9, "lr": 0.01}
    assert third.request("GET", "/tasks/train/log")[2]["lines"] == lines[-99:] + ["resumed"]
    assert third.request("GET", "/tasks/train/series")[2]["t"] == [], "series are not kept"


def test_kill_9_after_the_persist_interval_loses_nothing_acknowledged(tmp_path, daemon_factory):
    state = tmp_path / "state.json"
    args = ["--storage-path", str(state), "--persist-interval", "0.2"]
    first = daemon_factory(args)
    post(first, many_events(100))
    post(first, {"task_id": "job-7", "n": 777})
    acknowledged = time.time()
    wait_for(lambda: (read_state(state) or {}).get("saved_at", 0) >= acknowledged,
             timeout=20, message="a state write after the last acknowledged event")
    first.kill()

    second = daemon_factory(args)
    after = tasks(second)
    assert len(after) == 100
    assert after["job-7"]["n"] == 777


def test_corrupt_file_is_kept_aside_and_never_overwritten(tmp_path, daemon_factory):
    state = tmp_path / "state.json"
    garbage = '{"tasks": {"half-written'
    state.write_text(garbage)
    daemon = daemon_factory(["--storage-path", str(state), "--persist-interval", "0.1"])
    assert tasks(daemon) == {}
    aside = [name for name in os.listdir(tmp_path) if name.startswith("state.json.corrupt-")]
    assert len(aside) == 1 and (tmp_path / aside[0]).read_text() == garbage
    assert f"moved it to {tmp_path / aside[0]}" in daemon.logs()
    post(daemon, {"task_id": "fresh"})
    assert daemon.stop() == 0
    assert set(read_state(state)["tasks"]) == {"fresh"}
    assert (tmp_path / aside[0]).read_text() == garbage


def test_earlier_build_state_file_loads(tmp_path, daemon_factory):
    now = time.time()
    state = tmp_path / "tasks.json"
    state.write_text(json.dumps({
        "tasks": {
            "train": {"task_id": "train", "desc": "Training", "total": 100.0, "n": 42.0,
                      "unit": "it", "status": "update", "created_at": now - 50,
                      "updated_at": now - 5, "timestamp": now - 5, "recovered": True,
                      "recovered_at": now - 20},
            "etl": {"task_id": "etl", "n": 5.0, "status": "close", "created_at": now - 90,
                    "updated_at": now - 80, "done_at": now - 80},
            "idle": {"task_id": "idle", "n": 1.0, "status": "stale", "created_at": now - 90,
                     "updated_at": now - 60, "stale_at": now - 30},
        },
        "version": "0.2.1",
        "saved_at": now - 1,
    }))
    daemon = daemon_factory(["--storage-path", str(state)])
    loaded = tasks(daemon)
    assert {k: v["status"] for k, v in loaded.items()} == \
        {"train": "recovered", "etl": "close", "idle": "stale"}
    assert (loaded["train"]["n"], loaded["train"]["desc"]) == (42.0, "Training")
    post(daemon, {"task_id": "train", "n": 43})
    assert tasks(daemon)["train"]["status"] == "update"


@pytest.fixture
def private_mount(tmp_path):
    """A command prefix running the daemon in its own mount namespace on a 1 MiB tmpfs."""
    unshare = require_tool("unshare")
    require_tool("nsenter")
    probe = subprocess.run([unshare, "-m", "sh", "-c", f"mount -t tmpfs tmpfs {tmp_path}"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        message = f"cannot mount a private tmpfs here: {probe.stderr.strip()}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    directory = tmp_path / "state"
    directory.mkdir()
    command = [unshare, "-m", "sh", "-c",
               'mount -t tmpfs -o size=1m,mode=0700 tmpfs "$0" && exec "$@"',
               str(directory), sys.executable, "-m", "progressistad"]
    return directory, command


def in_namespace(daemon, *command):
    subprocess.run(["nsenter", "-t", str(daemon.proc.pid), "-m", *command], check=True,
                   capture_output=True)


def persistence_health(daemon):
    status, _, body = daemon.request("GET", "/health")
    return status, body["status"], body["persistence"]


@pytest.mark.parametrize("failure", ["read-only", "disk-full"])
def test_failing_disk_degrades_health_then_catches_up(private_mount, failure):
    directory, command = private_mount
    state = directory / "state.json"
    notify = NotifySocket()
    daemon = DaemonProcess(["--storage-path", str(state), "--persist-interval", "0.1"],
                           {"NOTIFY_SOCKET": notify.path}, command=command)
    try:
        daemon.start()
        post(daemon, {"task_id": "before", "n": 1})
        wait_for(lambda: persistence_health(daemon)[2]["saved_at"], message="a first write")
        if failure == "read-only":
            in_namespace(daemon, "mount", "-o", "remount,ro", str(directory))
        else:
            in_namespace(daemon, "sh", "-c", f"cat /dev/zero > {directory}/filler || true")
        post(daemon, {"task_id": "during", "n": 2, "meta": {"pad": "x" * 4000}})
        wait_for(lambda: persistence_health(daemon)[0] == 503, timeout=20,
                 message="/health 503 degraded")
        status, overall, report = persistence_health(daemon)
        assert overall == "degraded" and report["ok"] is False
        expected = "Read-only file system" if failure == "read-only" else "No space left on device"
        assert report["error"] == f"cannot write the state file: {expected}"
        notify.wait_for(lambda m: m.startswith("STATUS=") and expected in m, what="STATUS= problem")
        post(daemon, {"task_id": "still-serving"})
        assert daemon.logs().count(f"cannot write the state file: {expected}") == 1

        if failure == "read-only":
            in_namespace(daemon, "mount", "-o", "remount,rw", str(directory))
        else:
            in_namespace(daemon, "rm", f"{directory}/filler")
        wait_for(lambda: persistence_health(daemon)[0] == 200, timeout=60,
                 message="/health ok again once the disk takes writes")
        assert "written again after" in daemon.logs()
        assert daemon.stop() == 0
    finally:
        daemon.__exit__()
        notify.close()


def test_final_write_failing_at_stop_exits_1(private_mount):
    directory, command = private_mount
    daemon = DaemonProcess(["--storage-path", str(directory / "state.json"),
                            "--persist-interval", "3600"], command=command)
    try:
        daemon.start()
        post(daemon, {"task_id": "saved"})  # the first change is written at once
        wait_for(lambda: persistence_health(daemon)[2]["saved_at"], message="a first write")
        in_namespace(daemon, "mount", "-o", "remount,ro", str(directory))
        post(daemon, {"task_id": "unsaved"})  # waits for the persist interval, then SIGTERM
        assert daemon.stop() == 1
        assert "the final state could not be written" in daemon.logs()
    finally:
        daemon.__exit__()
