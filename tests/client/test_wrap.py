"""`progressista run -- CMD`: real commands wrapped as one task, against the real daemon."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import time

import pytest

from tests.client.helpers import (RecordingServer, assert_acceptable, client_env, log_tail,
                                  rejected, tasks, wait_task, wrapper)
from tests.support import REPO, free_port, require_tool

pytestmark = pytest.mark.integration

FAILING_SCRIPT = """\
echo "copying /srv"
echo "rsync: connection unexpectedly closed" >&2
echo "copied 12 files"
exit 3
"""


def _warning_lines(stderr: bytes):
    return [line for line in stderr.decode().splitlines() if line.startswith("progressista:")]


def test_a_failing_script_keeps_its_streams_and_its_status(daemon, tmp_path):
    script = tmp_path / "backup.sh"
    script.write_text(FAILING_SCRIPT)
    done = wrapper(["--job", "backup", "--task-id", "backup-1", "--", "sh", str(script)], daemon.url)
    assert done.returncode == 3
    assert done.stdout == b"copying /srv\ncopied 12 files\n"
    assert done.stderr == b"rsync: connection unexpectedly closed\n"
    task = wait_task(daemon, "backup-1", status="error")
    assert task["meta"] == {"job": "backup", "exit_status": 3}
    assert (task["desc"], task["n"], task["unit"]) == ("backup", 3, "lines")


def test_the_last_lines_go_to_the_log_tail(tmp_path, daemon):
    script = tmp_path / "backup.sh"
    script.write_text(FAILING_SCRIPT)
    with RecordingServer(daemon=daemon) as server:
        done = wrapper(["--task-id", "tail", "--", "sh", str(script)], server.url)
    assert done.returncode == 3
    lines = server.logs("tail")
    assert sorted(lines) == ["copied 12 files", "copying /srv", "rsync: connection unexpectedly closed"]
    assert lines.index("copying /srv") < lines.index("copied 12 files"), "each stream in order"
    events = [e for e in server.events() if e["task_id"] == "tail"]
    for event in events:
        assert_acceptable(event)
    assert events[0]["status"] == "start" and events[0]["meta"] == {"job": "sh"}
    assert events[-1]["status"] == "error" and events[-1]["meta"] == {"job": "sh", "exit_status": 3}
    task = wait_task(daemon, "tail", status="error")
    assert log_tail(daemon, "tail") == lines and task["last_log"] == lines[-1]
    assert task["log_lines"] == 3 and rejected(daemon) == 0


def test_a_command_killed_by_a_signal(daemon):
    done = wrapper(["--task-id", "killed", "--", "sh", "-c", "echo before; kill -KILL $$"], daemon.url)
    assert done.returncode == 128 + signal.SIGKILL
    assert done.stdout == b"before\n"
    task = wait_task(daemon, "killed", status="error")
    assert task["meta"] == {"job": "sh", "signal": "SIGKILL"}


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_signals_reach_the_command(daemon, signum):
    trap = f"trap 'echo caught; exit 7' {signum.name[3:]}; echo ready; while :; do sleep 0.05; done"
    proc = subprocess.Popen([sys.executable, "-m", "progressistad.client.cli", "run", "--task-id",
                             "trapped", "--", "sh", "-c", trap], env=client_env(daemon.url),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=str(REPO))
    try:
        assert proc.stdout.readline() == b"ready\n"
        proc.send_signal(signum)
        assert proc.wait(30) == 7
        assert proc.stdout.read() == b"caught\n"
    finally:
        proc.kill()
    assert wait_task(daemon, "trapped", status="error")["meta"]["exit_status"] == 7


def test_a_forwarded_signal_that_ends_the_command_is_128_plus_n(daemon):
    proc = subprocess.Popen([sys.executable, "-m", "progressistad.client.cli", "run", "--task-id",
                             "slept", "--", "sleep", "30"], env=client_env(daemon.url),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=str(REPO))
    try:
        wait_task(daemon, "slept")
        proc.terminate()
        assert proc.wait(30) == 128 + signal.SIGTERM
    finally:
        proc.kill()
    assert wait_task(daemon, "slept", status="error")["meta"] == {"job": "sleep", "signal": "SIGTERM"}


NESTED = """\
import os
from tqdm import tqdm
from tqdm.auto import trange
for epoch in tqdm(range(2), desc="epochs", task_id="epochs"):
    for _ in trange(3, desc="batches", task_id=f"batches-{epoch}", leave=False):
        pass
    tqdm.write(f"epoch {epoch} done")
print("chained:", os.environ.get("CHAINED"))
"""


def test_python_bars_report_as_children_of_the_command(daemon, tmp_path):
    (tmp_path / "train.py").write_text(NESTED)
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text("import os\nos.environ['CHAINED'] = 'yes'\n")
    env = {"PYTHONPATH": f"{site}:{REPO}"}
    done = wrapper(["--job", "nightly-train", "--task-id", "train", "--", sys.executable,
                    str(tmp_path / "train.py")], daemon.url, env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"epoch 0 done\nepoch 1 done\nchained: yes\n"
    assert wait_task(daemon, "train", status="close")["meta"] == {"job": "nightly-train",
                                                                 "exit_status": 0}
    epochs = wait_task(daemon, "epochs", status="close")
    assert epochs["meta"] == {"parent_id": "train", "job": "nightly-train:epochs"}
    for epoch in range(2):
        batches = wait_task(daemon, f"batches-{epoch}", status="close")
        assert batches["meta"] == {"parent_id": "epochs", "job": "nightly-train:batches"}
        assert batches["n"] == 3


def test_a_program_without_tqdm_does_not_load_it(daemon):
    code = "import sys; print('tqdm' in sys.modules, 'progressistad' in sys.modules)"
    done = wrapper(["--", sys.executable, "-c", code], daemon.url)
    assert done.returncode == 0 and done.stdout == b"False False\n", done.stderr


@pytest.mark.parametrize("away", ["refused", "bad token", "silent", "bad url"])
def test_a_daemon_that_is_away_never_harms_the_command(away, daemon_factory, tmp_path):
    env = {"PROGRESSISTA_REQUEST_TIMEOUT": "0.5"}
    server = None
    if away == "refused":
        url = f"http://127.0.0.1:{free_port()}"
    elif away == "bad token":
        url = daemon_factory(env={"PROGRESSISTA_API_TOKEN": "right"}).url
        env["PROGRESSISTA_API_TOKEN"] = "wrong"
    elif away == "silent":
        server = RecordingServer().__enter__()
        server.server.RequestHandlerClass.do_POST = lambda self: time.sleep(5)
        url = server.url
    else:
        url = "localhost:8000"
    (tmp_path / "job.py").write_text("from tqdm import tqdm\nfor _ in tqdm(range(3), disable=True):\n"
                                     "    print('step')\n")
    command = ["sh", "-c", f"echo out; echo err >&2; {sys.executable} {tmp_path / 'job.py'}; exit 5"]
    try:
        started = time.monotonic()
        done = wrapper(["--", *command], url, env)
        elapsed = time.monotonic() - started
    finally:
        if server is not None:
            server.__exit__(None, None, None)
    assert done.returncode == 5
    assert done.stdout == b"out\nstep\nstep\nstep\n"
    warnings = _warning_lines(done.stderr)
    assert len(warnings) <= 1, done.stderr
    assert done.stderr.decode().replace(warnings[0] + "\n" if warnings else "", "") == "err\n"
    assert elapsed < 15, "at most a few request timeouts at exit"


def test_output_passes_byte_for_byte(daemon):
    code = ("import os, sys\n"
            "data = bytes(range(256)) * 4096 + os.urandom(1 << 20) + b'\\r\\rno newline at the end'\n"
            "sys.stdout.buffer.write(data)\n"
            "sys.stderr.buffer.write(data[::-1] + b'\\n')\n"
            "sys.stdout.flush()\n"
            "print(len(data), __import__('hashlib').sha256(data).hexdigest(), file=sys.stderr)\n")
    done = wrapper(["--task-id", "binary", "--", sys.executable, "-c", code], daemon.url)
    assert done.returncode == 0
    size, digest = done.stderr.splitlines()[-1].split()
    out = done.stdout
    assert len(out) == int(size) and hashlib.sha256(out).hexdigest() == digest.decode()
    assert done.stderr[:len(out) + 1] == out[::-1] + b"\n"
    assert wait_task(daemon, "binary", status="close")["n"] == 2 * out.count(b"\n") + 2


def test_a_closed_output_pipe_ends_the_command_as_it_would_alone(daemon):
    shell = (f"{sys.executable} -m progressistad.client.cli run --task-id yes -- yes | head -n 2;"
             " echo ${PIPESTATUS[0]}")
    done = subprocess.run(["bash", "-c", shell], env=client_env(daemon.url), capture_output=True,
                          timeout=60, cwd=str(REPO))
    assert done.stdout == b"y\ny\n" + f"{128 + signal.SIGPIPE}\n".encode(), done.stderr
    assert wait_task(daemon, "yes", status="error")["meta"]["signal"] == "SIGPIPE"


def test_a_background_child_holding_the_pipes_does_not_hold_the_wrapper(daemon):
    started = time.monotonic()
    done = wrapper(["--", "sh", "-c", "sleep 30 & echo started"], daemon.url, timeout=60)
    assert done.returncode == 0 and done.stdout == b"started\n"
    assert time.monotonic() - started < 15


def test_command_not_found_and_usage_errors(daemon, tmp_path):
    missing = wrapper(["--task-id", "nope", "--", "no-such-command-here"], daemon.url)
    assert missing.returncode == 127 and missing.stdout == b""
    assert missing.stderr.decode().splitlines() == [
        "progressista run: no-such-command-here: No such file or directory"]
    assert wait_task(daemon, "nope", status="error")["meta"] == {"job": "no-such-command-here",
                                                                "exit_status": 127}
    (tmp_path / "plain.txt").write_text("not a program")
    assert wrapper(["--", str(tmp_path / "plain.txt")], daemon.url).returncode == 126
    script = tmp_path / "job.py"
    script.write_text("pass\n")
    for args in (["--job", "x", str(script)], [], ["--"], ["-m", "--", "json.tool"],
                 ["--unit", "rows", "--", "true"]):
        done = wrapper(args, daemon.url)
        assert done.returncode == 2 and b"Traceback" not in done.stderr, (args, done.stderr)


def test_a_quiet_command_is_reported_again_and_again(monkeypatch):
    from progressistad.client import flush, wrap

    monkeypatch.setattr(wrap, "KEEPALIVE", 0.2)
    with RecordingServer() as server:
        status = wrap.run_command(["sleep", "1.5"], None, "quiet", None,
                                  {"server_url": server.url, "push_every": 0.05}, {})
        assert flush(10)
    assert status == 0
    updates = [e for e in server.events() if e["task_id"] == "quiet" and e["status"] == "update"]
    assert len(updates) >= 3 and {e["n"] for e in updates} == {0}


def test_an_inner_wrapper_is_a_child_of_the_outer(daemon):
    inner = [sys.executable, "-m", "progressistad.client.cli", "run", "--task-id", "inner", "--",
             "true"]
    done = wrapper(["--task-id", "outer", "--", *inner], daemon.url)
    assert done.returncode == 0, done.stderr
    assert wait_task(daemon, "inner", status="close")["meta"]["parent_id"] == "outer"


def test_ctrl_c_at_a_terminal_reaches_the_command_once(daemon):
    import os
    import select

    counting = ("import signal, time\n"
                "signal.signal(signal.SIGINT, lambda *_: print('caught', flush=True))\n"
                "print('ready', flush=True)\n"
                "for _ in range(30):\n"
                "    time.sleep(0.05)\n"
                "print('end', flush=True)\n")
    terminal, side = os.openpty()
    # setsid --ctty: the wrapper leads a session whose controlling terminal is the pseudo-terminal.
    proc = subprocess.Popen([require_tool("setsid"), "--ctty", sys.executable, "-m",
                             "progressistad.client.cli", "run", "--task-id", "ctrl-c", "--",
                             sys.executable, "-c", counting], env=client_env(daemon.url),
                            stdin=side, stdout=side, stderr=side, cwd=str(REPO))
    os.close(side)
    seen, deadline, pressed = b"", time.monotonic() + 30, False
    try:
        while time.monotonic() < deadline and b"end" not in seen:
            if select.select([terminal], [], [], 0.1)[0]:
                try:
                    seen += os.read(terminal, 1024)
                except OSError:
                    break
            if b"ready" in seen and not pressed:
                os.write(terminal, b"\x03")  # the terminal's Ctrl-C: SIGINT to its foreground group
                pressed = True
        assert proc.wait(30) == 0, seen
    finally:
        proc.kill()
        os.close(terminal)
    assert seen.count(b"caught") == 1, seen
    assert wait_task(daemon, "ctrl-c", status="close")
