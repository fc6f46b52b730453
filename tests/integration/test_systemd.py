"""The daemon under systemd's protocols: sd_notify datagrams, watchdog, signals, journal, activation."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import statistics
import sys
import time

import pytest
import tornado.websocket

from tests.support import DaemonProcess, NotifySocket, free_port, post, require_tool, wait_for

pytestmark = pytest.mark.integration

WATCHDOG_USEC = 1_000_000


def write_state(path, count):
    now = time.time()
    tasks = {f"job-{i}": {"task_id": f"job-{i}", "n": i, "status": "update",
                          "updated_at": now - 5, "created_at": now - 10} for i in range(count)}
    path.write_text(json.dumps({"version": 2, "saved_at": now, "tasks": tasks}))


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def monotonic_usec():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


@pytest.fixture
def unstarted():
    """`unstarted(args, env)`: a DaemonProcess the test starts itself; killed at teardown."""
    made = []

    def make(args=(), env=None, **kwargs):
        made.append(DaemonProcess(args, env, **kwargs))
        return made[-1]

    yield make
    for daemon in made:
        daemon.__exit__()


@pytest.fixture
def notify_socket():
    sock = NotifySocket()
    yield sock
    sock.close()


def test_ready_status_watchdog_reload_and_stop(tmp_path, unstarted, notify_socket):
    state = tmp_path / "state.json"
    write_state(state, 3)
    conf = tmp_path / "d.conf"
    conf.write_text("api-tokens = old-token\n")
    daemon = unstarted(
        ["--config", str(conf), "--storage-path", str(state)],
        {"NOTIFY_SOCKET": notify_socket.path, "WATCHDOG_USEC": str(WATCHDOG_USEC)})
    daemon.start(wait=False)

    notify_socket.wait_for(lambda m: m == "READY=1", what="READY=1")
    # READY=1 means the port answers and the state is loaded, with no retry needed
    status, _, body = daemon.request("GET", "/health", timeout=5)
    assert (status, body["tasks"]) == (200, 3)
    assert notify_socket.lifecycle() == ["READY=1"]

    line = notify_socket.wait_for(lambda m: m.startswith("STATUS="), what="STATUS=")
    assert re.fullmatch(r"STATUS=3 tasks, 0 dashboards, \d+\.\d events/s", line), line

    for _ in range(5):
        notify_socket.wait_for(lambda m: m == "WATCHDOG=1", what="WATCHDOG=1")
    pings = [t for t, m in notify_socket.messages if m == "WATCHDOG=1"]
    # the median interval, so that one late read on a busy machine does not decide
    interval = statistics.median(b - a for a, b in zip(pings, pings[1:]))
    assert 0.3 < interval < 0.95, f"WATCHDOG=1 every {interval:.2f}s, expected 0.5s (half of 1s)"

    assert daemon.request("GET", "/tasks", headers=bearer("old-token"))[0] == 200
    assert daemon.request("GET", "/tasks", headers=bearer("new-token"))[0] == 401

    conf.write_text("api-tokens = new-token\nretention-seconds = 60\n")
    before = monotonic_usec()
    daemon.send_signal(signal.SIGHUP)
    notify_socket.wait_for(lambda m: m == "READY=1", what="READY=1 after SIGHUP")
    reloading = notify_socket.lifecycle()[1].split("\n")
    assert notify_socket.lifecycle()[2:] == ["READY=1"]
    assert reloading[0] == "RELOADING=1"
    assert before <= int(reloading[1].split("=", 1)[1]) <= monotonic_usec()
    assert daemon.request("GET", "/tasks", headers=bearer("old-token"))[0] == 401
    assert daemon.request("GET", "/tasks", headers=bearer("new-token"))[0] == 200

    conf.write_text("api-tokens = newer-token\nretention-seconds = never\n")
    daemon.send_signal(signal.SIGHUP)
    notify_socket.wait_for(lambda m: m == "READY=1", what="READY=1 after a bad reload")
    assert [m.split("\n")[0] for m in notify_socket.lifecycle()[3:]] == ["RELOADING=1", "READY=1"]
    assert daemon.request("GET", "/tasks", headers=bearer("new-token"))[0] == 200
    assert daemon.request("GET", "/tasks", headers=bearer("newer-token"))[0] == 401
    assert "reload failed, keeping the current settings: --retention-seconds 'never'" in daemon.logs()

    assert daemon.stop(signal.SIGTERM) == 0
    notify_socket.wait_for(lambda m: m == "STOPPING=1", what="STOPPING=1", timeout=5)
    assert notify_socket.lifecycle()[-1] == "STOPPING=1"
    for token in ("old-token", "new-token", "newer-token"):
        assert token not in daemon.logs()


def test_websockets_are_closed_with_1001_on_sigterm(daemon_factory):
    daemon = daemon_factory()

    async def watch():
        conn = await tornado.websocket.websocket_connect(daemon.ws_url + "/ws")
        assert json.loads(await conn.read_message()) == {"tasks": {}}
        daemon.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(conn.read_message(), 10) is None
        return conn.close_code

    assert asyncio.run(watch()) == 1001
    assert daemon.proc.wait(15) == 0


def test_journal_stream_gets_priorities_and_no_timestamps(tmp_path):
    daemon = DaemonProcess(["--api-tokens", "hidden-token"])
    st = os.fstat(daemon.log_file.fileno())
    daemon.env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
    try:
        daemon.start()
        assert daemon.request("GET", "/tasks?token=wrong-token")[0] == 401
        assert daemon.stop() == 0
        lines = daemon.logs().splitlines()
        assert lines and all(re.match(r"<[0-7]>progressistad", line) for line in lines), lines
        start = [line for line in lines if "dashboard at" in line]
        assert start == [f"<6>progressistad: progressistad {start[0].split()[2]} listening on "
                         f"127.0.0.1:{daemon.port}; dashboard at http://127.0.0.1:{daemon.port}"
                         "/static/index.html; tokens required: 1 read-write, 0 read-only"]
        assert any(line.startswith("<4>progressistad.access: 401") for line in lines)
        assert "hidden-token" not in daemon.logs() and "wrong-token" not in daemon.logs()
        assert not re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", daemon.logs())
    finally:
        daemon.__exit__()


def test_socket_activation_serves_http_and_websocket():
    tool = require_tool("systemd-socket-activate")
    port = free_port()
    daemon = DaemonProcess(port=port, command=[tool, "-l", f"127.0.0.1:{port}", sys.executable,
                                               "-m", "progressistad"])
    try:
        daemon.start()  # the first connection makes systemd-socket-activate exec the daemon
        assert "socket activation: serving 1 inherited socket" in daemon.logs()
        post(daemon, {"task_id": "activated", "n": 1})

        async def snapshot():
            conn = await tornado.websocket.websocket_connect(daemon.ws_url + "/ws")
            message = json.loads(await asyncio.wait_for(conn.read_message(), 10))
            conn.close()
            return message

        assert asyncio.run(snapshot())["tasks"]["activated"]["n"] == 1
        assert daemon.stop() == 0
    finally:
        daemon.__exit__()


def test_socket_activation_ignores_descriptors_meant_for_another_process(daemon_factory):
    daemon = daemon_factory(env={"LISTEN_FDS": "1", "LISTEN_PID": "1"})
    wait_for(lambda: daemon.request("GET", "/health")[0] == 200)
    assert "socket activation" not in daemon.logs()
