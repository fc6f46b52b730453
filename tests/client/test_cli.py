"""The `progressista` command, every subcommand, against the real daemon."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.client.helpers import client_env, progressista, tasks, wait_task
from tests.support import REPO, DaemonProcess, free_port

pytestmark = pytest.mark.integration


def test_send_tasks_and_rm(daemon):
    sent = progressista(["send", "backup", "--n", "10", "--total", "100", "--desc", "Nightly backup",
                         "--unit", "GB", "--meta", '{"host": "db1"}'], daemon.url)
    assert sent.returncode == 0 and sent.stdout == b"", sent.stderr
    task = wait_task(daemon, "backup")
    assert (task["n"], task["total"], task["desc"], task["unit"], task["meta"], task["status"]) == (
        10, 100, "Nightly backup", "GB", {"host": "db1"}, "update")
    assert progressista(["send", "backup", "--n", "100", "--close"], daemon.url).returncode == 0
    assert wait_task(daemon, "backup")["status"] == "close"
    assert progressista(["send", "restore", "--error"], daemon.url).returncode == 0
    assert wait_task(daemon, "restore")["status"] == "error"

    table = progressista(["tasks"], daemon.url, text=True)
    assert table.returncode == 0
    lines = table.stdout.splitlines()
    assert lines[0].split()[:3] == ["TASK", "STATUS", "PROGRESS"]
    assert any(line.split()[:4] == ["backup", "close", "100/100", "GB"] for line in lines)
    listed = json.loads(progressista(["tasks", "--json", "--status", "error"], daemon.url).stdout)
    assert set(listed["tasks"]) == {"restore"}

    removed = progressista(["rm", "backup", "nope"], daemon.url, text=True)
    assert removed.returncode == 1
    assert removed.stdout == "removed backup\n" and "no such task: nope" in removed.stderr
    bulk = progressista(["rm", "--status", "error"], daemon.url, text=True)
    assert bulk.returncode == 0 and bulk.stdout == "removed restore\n"
    assert tasks(daemon) == {}
    assert progressista(["rm"], daemon.url).returncode == 2


def test_history_of_a_job_and_of_every_job(daemon_factory):
    daemon = daemon_factory(env={"PROGRESSISTA_API_TOKEN": "tok"})
    token = {"PROGRESSISTA_API_TOKEN": "tok"}
    for night, status in enumerate(("close", "close", "error")):
        task_id = f"backup:db1:{night}"
        for event in ({"status": "start", "total": 2 * 2 ** 30, "unit": "B"},
                      {"status": status, "n": 2 * 2 ** 30}):
            progressista(["send", task_id, "--meta", '{"job": "backup"}',
                          *[f"--{k}={v}" if k != "status" else f"--{v}" for k, v in event.items()]],
                         daemon.url, token)
    runs = progressista(["history", "backup"], daemon.url, token, text=True)
    assert runs.returncode == 0, runs.stderr
    lines = runs.stdout.splitlines()
    assert lines[0].split() == ["ENDED", "STATUS", "DURATION", "PROGRESS", "TASK", "DESC"]
    assert len(lines) == 4 and lines[1].split()[2:4] == ["error", "0s"]
    assert "2 GiB/2 GiB" in lines[1] and "backup:db1:2" in lines[1]
    jobs = progressista(["history"], daemon.url, token, text=True).stdout.splitlines()
    assert jobs[0].split() == ["JOB", "RUNS", "OK", "FAILED", "USUALLY", "P90", "LAST", "ENDED"]
    assert jobs[1].split()[:7] == ["backup", "3", "2", "1", "0s", "0s", "error"]
    assert progressista(["history", "b*"], daemon.url, token, text=True).stdout == "\n".join(
        jobs) + "\n"
    one = json.loads(progressista(["history", "backup", "--limit", "1", "--json"], daemon.url,
                                  token).stdout)
    assert len(one["runs"]) == 1 and one["next"]
    assert "no runs of 'other'" in progressista(["history", "other"], daemon.url, token,
                                                text=True).stdout
    refused = progressista(["history"], daemon.url, text=True)
    assert refused.returncode == 1 and "401" in refused.stderr


def test_base_url_flag_and_token(daemon_factory):
    daemon = daemon_factory(env={"PROGRESSISTA_API_TOKEN": "tok"})
    base = daemon.url + "/"
    refused = progressista(["send", "t", "--server-url", base], "http://unused:1", text=True)
    assert refused.returncode == 1
    assert "401" in refused.stderr and "--token" in refused.stderr and len(refused.stderr.splitlines()) == 1
    ok = progressista(["send", "t", "--n", "1", "--server-url", base, "--token", "tok"], "http://unused:1")
    assert ok.returncode == 0, ok.stderr
    from_env = progressista(["tasks", "--json"], daemon.url, {"PROGRESSISTA_API_TOKEN": "tok"})
    assert "t" in json.loads(from_env.stdout)["tasks"]


@pytest.mark.parametrize("args", [["send", "x"], ["tasks"], ["rm", "x"], ["demo", "--seconds", "1"],
                                  ["history"], ["history", "nightly"]])
def test_unreachable_daemon_is_one_line_and_exit_1(args):
    done = progressista(args, f"http://127.0.0.1:{free_port()}", text=True)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "cannot reach the daemon" in done.stderr, done.stderr


def test_bad_arguments_are_usage_errors(daemon):
    for args in (["send", "x", "--n", "-1"], ["send", "x", "--meta", "[1]"], ["bogus"],
                 ["tasks", "--server-url", "localhost:8000"], ["history", "--limit", "0"],
                 ["history", "--limit", "x"]):
        done = progressista(args, daemon.url, text=True)
        assert done.returncode == 2, (args, done.stderr)
        assert "Traceback" not in done.stderr


def test_run_a_script_and_a_module(daemon, tmp_path):
    script = tmp_path / "job.py"
    script.write_text(
        "import sys\nfrom tqdm import tqdm\n"
        "for _ in tqdm(range(5), desc='job', task_id='run:' + sys.argv[1]):\n    pass\n"
        "sys.exit(int(sys.argv[2]))\n")
    done = progressista(["run", str(script), "--", "script", "7"], daemon.url)
    assert done.returncode == 7, done.stderr
    assert wait_task(daemon, "run:script", status="close")["n"] == 5
    (tmp_path / "jobmod.py").write_text(script.read_text())
    env = {"PYTHONPATH": f"{tmp_path}:{REPO}"}
    done = progressista(["run", "--unit", "rows", "-m", "jobmod", "--", "module", "0"], daemon.url, env)
    assert done.returncode == 0, done.stderr
    assert wait_task(daemon, "run:module", status="close")["unit"] == "rows"
    missing = progressista(["run", str(tmp_path / "absent.py")], daemon.url, text=True)
    assert missing.returncode == 2 and "no such script" in missing.stderr
    missing = progressista(["run", "-m", "no_such_module_here"], daemon.url, text=True)
    assert missing.returncode == 2 and "no module named 'no_such_module_here'" in missing.stderr
    (tmp_path / "boom.py").write_text("raise ValueError('boom')\n")
    boom = progressista(["run", str(tmp_path / "boom.py")], daemon.url, text=True)
    assert boom.returncode == 1
    assert boom.stderr.splitlines()[1].strip().startswith(f'File "{tmp_path / "boom.py"}", line 1')
    assert boom.stderr.splitlines()[-1] == "ValueError: boom"


def test_demo_has_lively_stalled_and_failed_bars(daemon):
    done = progressista(["demo", "--seconds", "1"], daemon.url)
    assert done.returncode == 0, done.stderr
    by_suffix = {tid.rsplit(":", 1)[-1]: task for tid, task in tasks(daemon).items()}
    assert by_suffix["etl"]["status"] == "error"
    assert by_suffix["stalled"]["status"] in ("start", "update")
    assert by_suffix["download"]["status"] == by_suffix["train"]["status"] == "close"
    assert any(t["meta"] and t["meta"].get("parent_id", "").endswith(":train")
               for t in tasks(daemon).values())


def test_pipe_bytes_at_full_speed(daemon):
    size = 300 * 1024 * 1024
    shell = (f"head -c {size} /dev/zero | {sys.executable} -m progressistad.client.cli pipe "
             f"--total {size} --task-id big --desc bigcopy | wc -c")
    done = subprocess.run(["bash", "-o", "pipefail", "-c", shell], env=client_env(daemon.url),
                          capture_output=True, text=True, timeout=120, cwd=str(REPO))
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == size
    task = wait_task(daemon, "big", status="close")
    assert (task["n"], task["total"], task["unit"], task["desc"]) == (size, size, "B", "bigcopy")


def test_pipe_lines_and_size_from(daemon, tmp_path):
    data = b"".join(b"line %d\n" % i for i in range(10000))
    source = tmp_path / "in.txt"
    source.write_bytes(data)
    lines = progressista(["pipe", "--lines", "--task-id", "lines", "--total", "10000"], daemon.url,
                         input=data)
    assert lines.returncode == 0 and lines.stdout == data, lines.stderr
    assert wait_task(daemon, "lines", status="close")["n"] == 10000
    sized = progressista(["pipe", "--size-from", str(source), "--task-id", "sized", "-q"], daemon.url,
                         input=data)
    assert sized.returncode == 0 and sized.stdout == data
    assert wait_task(daemon, "sized", status="close")["total"] == len(data)
    missing = progressista(["pipe", "--size-from", str(tmp_path / "nope")], daemon.url, input=b"")
    assert missing.returncode == 2 and b"--size-from" in missing.stderr


def test_pipe_keeps_copying_without_a_daemon():
    data = b"x" * 100000
    done = progressista(["pipe"], f"http://127.0.0.1:{free_port()}", input=data)
    assert done.returncode == 0 and done.stdout == data
    assert done.stderr.count(b"cannot report progress") <= 1


def test_serve_runs_the_daemon():
    with DaemonProcess(command=[sys.executable, "-m", "progressistad.client.cli", "serve"]) as daemon:
        assert daemon.request("GET", "/health")[0] == 200


def test_help_and_version():
    done = progressista(["--help"], "http://unused:1", text=True)
    assert done.returncode == 0
    for command in ("serve", "run", "demo", "send", "pipe", "tasks", "rm"):
        assert command in done.stdout
    assert progressista(["--version"], "http://unused:1").returncode == 0
    assert progressista([], "http://unused:1").returncode == 2


def test_pipe_between_regular_files(daemon, tmp_path):
    data = bytes(range(256)) * 4096
    source, target = tmp_path / "in.bin", tmp_path / "out.bin"
    source.write_bytes(data)
    with open(source, "rb") as stdin, open(target, "wb") as stdout:
        done = progressista(["pipe", "--task-id", "files", "-q"], daemon.url, stdin=stdin,
                            stdout=stdout, stderr=subprocess.PIPE)
    assert done.returncode == 0, done.stderr
    assert target.read_bytes() == data
    assert wait_task(daemon, "files", status="close")["n"] == len(data)


def test_pipe_output_closed_early_reports_an_error(daemon):
    shell = (f"head -c 50000000 /dev/zero | {sys.executable} -m progressistad.client.cli pipe -q "
             f"--task-id cut | head -c 10 > /dev/null; echo ${{PIPESTATUS[1]}}")
    done = subprocess.run(["bash", "-c", shell], env=client_env(daemon.url), capture_output=True,
                          text=True, timeout=60, cwd=str(REPO))
    assert done.stdout.strip() == "1", done.stderr
    assert wait_task(daemon, "cut", status="error")["n"] >= 0
