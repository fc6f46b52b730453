"""A state file that cannot grow (file size limit): the daemon keeps serving, says so in
/health, and once the limit is lifted the file holds every task, across a kill -9 too."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support import DaemonProcess, post, require_tool, wait_for

pytestmark = pytest.mark.integration

LIMIT = 256 * 1024


def health(daemon):
    status, _, body = daemon.request("GET", "/health")
    return status, body


def test_file_size_limit_degrades_then_catches_up_and_loses_nothing(tmp_path):
    prlimit = require_tool("prlimit")
    state = tmp_path / "state.json"
    args = ["--storage-path", str(state), "--persist-interval", "0.1", "--log-level", "warning"]
    # Python ignores SIGXFSZ, so a write past the limit fails with EFBIG instead of killing it.
    command = [prlimit, f"--fsize={LIMIT}:unlimited", "--", sys.executable, "-m", "progressistad"]
    daemon = DaemonProcess(args, command=command).start()
    restarted = None
    try:
        post(daemon, {"task_id": "small", "n": 1})
        wait_for(lambda: health(daemon)[1]["persistence"]["saved_at"], message="a first write")
        big = [{"task_id": f"big-{i}", "n": i, "desc": "d" * 1000} for i in range(400)]
        post(daemon, big)
        wait_for(lambda: health(daemon)[0] == 503, timeout=20, message="/health degraded")
        status, report = health(daemon)
        assert report["status"] == "degraded" and report["persistence"]["ok"] is False
        assert "File too large" in report["persistence"]["error"]
        post(daemon, {"task_id": "during", "n": 7})
        assert daemon.request("GET", "/tasks/big-399")[2]["n"] == 399
        assert state.stat().st_size <= LIMIT

        pid = str(daemon.proc.pid)
        subprocess.run([prlimit, "--pid", pid, "--fsize=unlimited:unlimited"], check=True)
        wait_for(lambda: health(daemon)[0] == 200, timeout=60, message="/health ok again")
        on_disk = json.loads(state.read_text())["tasks"]
        assert len(on_disk) == 402 and on_disk["during"]["n"] == 7
        assert on_disk["big-399"]["n"] == 399
        daemon.kill()

        restarted = DaemonProcess(args).start()
        served = restarted.request("GET", "/tasks")[2]["tasks"]
        assert set(served) == set(on_disk)
        assert "Traceback" not in daemon.logs()
    finally:
        daemon.__exit__()
        if restarted is not None:
            restarted.__exit__()
