"""Default jobs and task ids (SPEC section 14): the program and the description make the job,
host, pid and bar number end the id; what the user gives wins; the history folds the nights."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

from progressistad import contract
from progressistad.client import jobs
from tests.client.helpers import client_env, progressista, run_program, tasks, wait_task
from tests.support import REPO, wait_for

HOST = socket.gethostname()


def test_the_program_is_the_module_run_with_m_else_the_script_s_basename(tmp_path):
    package = tmp_path / "nightly"
    package.mkdir()
    (package / "__init__.py").write_text("")
    probe = "from progressistad.client.jobs import program\nprint(program())\n"
    (package / "etl.py").write_text(probe)
    (package / "__main__.py").write_text(probe)
    (tmp_path / "train.py").write_text(probe)
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{tmp_path}"}

    def shown(*args):
        done = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env,
                              cwd=str(tmp_path), timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert shown(str(tmp_path / "train.py")) == "train.py"
    assert shown("-m", "nightly.etl") == "nightly.etl"
    assert shown("-m", "nightly") == "nightly"
    assert shown("-c", probe) == jobs.INTERPRETER


def test_a_bar_s_job_and_id():
    assert jobs.bar_job("train.py", "Epoch: ", 3) == "train.py:Epoch"
    assert jobs.bar_job("train.py", "", 3) == "train.py:bar-3"
    assert jobs.task_id("train.py:Epoch", 3) == f"train.py:Epoch:{HOST}:{os.getpid()}:bar-3"
    assert jobs.task_id("backup") == f"backup:{HOST}:{os.getpid()}"
    long = jobs.task_id("x" * 1000, 12)
    assert len(long) == contract.TASK_ID_MAX_CHARS and long.endswith(f":{os.getpid()}:bar-12")
    assert jobs.command_job(["/usr/local/bin/backup.sh", "--full"]) == "backup.sh"


def test_default_ids_and_jobs_of_a_script_and_what_the_user_gives_wins(daemon, tmp_path):
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent("""
        import os
        from progressistad.client import RemoteTqdm
        for _ in RemoteTqdm(range(2), desc="Epoch"):
            pass
        RemoteTqdm(range(1)).close()
        for _ in RemoteTqdm(range(1), desc="named", task_id="my-task"):
            pass
        for _ in RemoteTqdm(range(1), desc="x", meta={"job": "nightly-train"}):
            pass
        print(os.getpid())
    """))
    done = subprocess.run([sys.executable, str(script)], env=client_env(daemon.url),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    pid = done.stdout.strip()
    epoch = wait_task(daemon, f"train.py:Epoch:{HOST}:{pid}:bar-1", status="close")
    assert epoch["meta"] == {"job": "train.py:Epoch"}
    assert wait_task(daemon, f"train.py:bar-2:{HOST}:{pid}:bar-2")["meta"] == {
        "job": "train.py:bar-2"}
    assert wait_task(daemon, "my-task", status="close")["meta"] is None, \
        "a task the user named is its own job"
    assert wait_task(daemon, f"nightly-train:{HOST}:{pid}:bar-4")["meta"] == {
        "job": "nightly-train"}


def test_two_nights_of_one_script_are_one_job_in_the_history(daemon, tmp_path):
    script = tmp_path / "nightly.py"
    script.write_text("from progressistad.client import RemoteTqdm\n"
                      "for _ in RemoteTqdm(range(3), desc='load'):\n    pass\n")
    for _ in range(2):
        done = subprocess.run([sys.executable, str(script)], env=client_env(daemon.url),
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr

    def both_runs():
        status, _, body = daemon.request("GET", "/history?job=nightly.py:load")
        return status == 200 and len(body["runs"]) == 2 and body["runs"]

    runs = wait_for(both_runs, timeout=20, message="two runs of nightly.py:load")
    assert {run["status"] for run in runs} == {"close"}
    assert len({run["task_id"] for run in runs}) == 2, "each night is its own task"


def test_a_wrapped_command_s_bars_take_its_job_and_pipe_names_its_own(daemon):
    done = run_program("""
        from progressistad.client import RemoteTqdm
        RemoteTqdm(range(1), desc="step").close()
    """, daemon.url, extra_env={"PROGRESSISTA_JOB": "backup.sh",
                                "PROGRESSISTA_PARENT_ID": "outer"})
    assert done.returncode == 0, done.stderr
    wait_for(lambda: any(t["meta"] == {"parent_id": "outer", "job": "backup.sh:step"}
                         and t["task_id"].startswith(f"backup.sh:step:{HOST}:")
                         for t in tasks(daemon).values()), message="the wrapped bar")
    piped = progressista(["pipe", "--desc", "dump", "-q"], daemon.url, input=b"abc",
                         capture_output=True)
    assert piped.returncode == 0
    wait_for(lambda: any(t["meta"] == {"job": "pipe:dump"} and t["task_id"].startswith(
        f"pipe:dump:{HOST}:") for t in tasks(daemon).values()), message="the pipe's task")
