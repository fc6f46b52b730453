"""The daemon needs nothing the units' SystemCallFilter= and RestrictAddressFamilies= forbid.

The real daemon runs under the same seccomp filter (seccomp_exec.py, built from
`systemd-analyze syscall-filter`, killing on any other call) through a workload:
HTTP, a WebSocket, sd_notify, SIGHUP, SIGTERM and persistence across a restart.
The socket-activated variant also runs in a network namespace of its own
(PrivateNetwork=yes) with AF_UNIX as the only socket family.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

from tests.packaging.helpers import (
    SECCOMP_EXEC,
    SYSTEM_PYTHON,
    SYSTEMD_DIR,
    require_root,
    require_system_python_module,
    unit_values,
    ws_messages,
)
from tests.support import DaemonProcess, NotifySocket, free_port, require_tool

pytestmark = pytest.mark.packaging

SIGSYS_EXIT = -signal.SIGSYS


def filtered(families: str) -> List[str]:
    require_system_python_module("seccomp", "python3-seccomp")
    require_tool("systemd-analyze")
    return [SYSTEM_PYTHON, str(SECCOMP_EXEC), "--families", families, "--"]


def unit_families(name: str) -> str:
    (families,) = unit_values(SYSTEMD_DIR / name)["RestrictAddressFamilies"]
    return ",".join(families.split())


def test_the_filter_kills_a_privileged_call():
    result = subprocess.run(filtered("AF_UNIX") + [sys.executable, "-c", "import os; os.setuid(0)"],
                            capture_output=True, timeout=60)
    assert result.returncode == SIGSYS_EXIT


def test_the_filter_refuses_other_socket_families():
    code = "import socket\ntry:\n socket.socket(socket.AF_INET)\nexcept OSError as e:\n print(e.errno)"
    result = subprocess.run(filtered("AF_UNIX") + [sys.executable, "-c", code],
                            capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "97", result.stderr  # EAFNOSUPPORT, as systemd answers


def has_line(line: str):
    return lambda message: line in message.splitlines()


def run_workload(proc: DaemonProcess, state: Path, notify: NotifySocket) -> None:
    status, _, body = proc.request("POST", "/progress", {"task_id": "job", "n": 2, "total": 4})
    assert (status, body["accepted"]) == (200, 1)
    (message,) = ws_messages(proc.ws_url + "/ws")
    assert message["tasks"]["job"]["n"] == 2
    status, _, page = proc.request("GET", "/static/index.html")
    assert status == 200 and "<html" in page
    notify.wait_for(has_line("READY=1"), what="READY=1")
    notify.wait_for(has_line("WATCHDOG=1"), what="a watchdog ping")
    proc.send_signal(signal.SIGHUP)
    notify.wait_for(has_line("RELOADING=1"), what="RELOADING=1 after SIGHUP")
    notify.wait_for(has_line("READY=1"), what="READY=1 after the reload")
    assert proc.request("GET", "/health")[0] == 200
    assert proc.stop(signal.SIGTERM) == 0, proc.logs()
    assert "job" in json.loads(state.read_text())["tasks"]


def test_daemon_runs_under_the_tcp_service_filter(tmp_path):
    state = tmp_path / "state.json"
    notify = NotifySocket()
    command = filtered(unit_families("progressistad.service")) + [sys.executable, "-m", "progressistad"]
    args = ["--storage-path", str(state), "--persist-interval", "0.2"]
    env = {"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "1000000"}
    try:
        with DaemonProcess(args, env, command=command) as proc:
            run_workload(proc, state, notify)
    finally:
        notify.close()
    with DaemonProcess(args, command=command) as again:
        status, _, task = again.request("GET", "/tasks/job")
        assert status == 200 and task["n"] == 2
        assert again.stop(signal.SIGTERM) == 0


def test_socket_activated_daemon_runs_without_network_and_only_af_unix(tmp_path):
    activate = require_tool("systemd-socket-activate")
    unshare = require_tool("unshare")
    require_root()  # for the private network namespace
    state = tmp_path / "state.json"
    notify = NotifySocket()
    port = free_port()
    # systemd-socket-activate passes on only the variables it is told to.
    command = [activate, "-l", f"127.0.0.1:{port}", "-E", "NOTIFY_SOCKET", "-E", "WATCHDOG_USEC",
               unshare, "--net", "--"]
    command += filtered(unit_families("progressistad-activated.service"))
    command += [sys.executable, "-m", "progressistad"]
    args = ["--storage-path", str(state), "--persist-interval", "0.2"]
    env = {"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "1000000"}
    try:
        with DaemonProcess(args, env, command=command, port=port) as proc:
            assert os.readlink(f"/proc/{proc.proc.pid}/ns/net") != os.readlink("/proc/self/ns/net")
            run_workload(proc, state, notify)
    finally:
        notify.close()
