"""RemoteTqdm against the real daemon: arrival, coalescing, batching, failures, fork, threads, exit."""

from __future__ import annotations

import os
import time

import pytest

from tests.client.helpers import (RecordingServer, run_program, start_program, tasks, wait_task)
from tests.support import DaemonProcess, free_port, post, wait_for

pytestmark = pytest.mark.integration


def test_bars_arrive_coalesced_and_closed(daemon):
    done = run_program("""
        from progressistad.client import RemoteTqdm
        with RemoteTqdm(total=2000, desc="copy", unit="files", task_id="job:copy",
                        meta={"team": "data"}) as bar:
            for _ in range(2000):
                bar.update(1)
            bar.set_description("copied")
    """, daemon.url)
    assert done.returncode == 0, done.stderr
    task = wait_task(daemon, "job:copy", status="close")
    assert (task["n"], task["total"], task["desc"], task["unit"]) == (2000, 2000, "copied", "files")
    assert task["meta"] == {"team": "data"}


def test_updates_are_coalesced_and_many_bars_share_one_batch():
    with RecordingServer() as server:
        done = run_program("""
            import time
            from progressistad.client import RemoteTqdm
            bars = [RemoteTqdm(total=100, task_id=f"b{i}", disable=True) for i in range(50)]
            for step in range(100):
                for bar in bars:
                    bar.update(1)
                time.sleep(0.002)
            for bar in bars:
                bar.close()
        """, server.url)
        assert done.returncode == 0, done.stderr
    events = server.events()
    assert len(events) < 50 * 100 / 5, "updates were not coalesced"
    assert max(len(body) for body in server.bodies if isinstance(body, list)) >= 25
    assert len(server.connections) == 1, "one keep-alive connection for every batch"
    finals = {e["task_id"]: e for e in events if e["status"] == "close"}
    assert len(finals) == 50 and all(e["n"] == 100 for e in finals.values())
    starts = [e for e in events if e["status"] == "start"]
    assert len({e["task_id"] for e in starts}) == 50


def test_nested_bars_name_their_parent_and_default_ids_say_job_host_and_pid(daemon):
    done = run_program("""
        import os
        from progressistad.client import RemoteTqdm
        for _ in RemoteTqdm(range(2), desc="outer"):
            for _ in RemoteTqdm(range(3), desc="inner", leave=False):
                pass
        print(os.getpid())
    """, daemon.url)
    pid = done.stdout.strip()
    wait_for(lambda: len(tasks(daemon)) == 3, message="3 tasks")
    by_desc = {}
    for task in tasks(daemon).values():
        by_desc.setdefault(task["desc"], []).append(task)
    outer = by_desc["outer"][0]
    # The default job is the program (here `python -c`) and the description; the id ends
    # with host, pid and bar number.
    assert outer["task_id"] == f"python:outer:{os.uname().nodename}:{pid}:bar-1"
    assert outer["meta"] == {"job": "python:outer"}
    assert all(t["meta"] == {"parent_id": outer["task_id"], "job": "python:inner"}
               for t in by_desc["inner"])
    assert {t["task_id"].rsplit(":", 1)[0] for t in by_desc["inner"]} == {
        f"python:inner:{os.uname().nodename}:{pid}"}


def test_server_down_at_start_then_up(tmp_path):
    port = free_port()
    stop = tmp_path / "stop"
    program = start_program("""
        import logging, os, sys, time
        logging.basicConfig()
        from progressistad.client import RemoteTqdm
        bar = RemoteTqdm(total=None, task_id="late", disable=True)
        while not os.path.exists(sys.argv[1]):
            bar.update(1)
            time.sleep(0.01)
        bar.close()
    """, f"http://127.0.0.1:{port}", args=[str(stop)])
    try:
        time.sleep(0.5)  # reporting into a closed port for a while
        assert program.poll() is None
        with DaemonProcess(port=port) as daemon:
            wait_task(daemon, "late")
            stop.touch()
            assert program.wait(30) == 0
            task = wait_task(daemon, "late", status="close")
            assert task["n"] > 0
    finally:
        program.kill()
    stderr = program.stderr.read()
    assert stderr.count("cannot report progress") == 1, stderr


def test_server_goes_down_mid_run_and_comes_back(tmp_path, daemon_factory):
    first = daemon_factory()
    stop = tmp_path / "stop"
    program = start_program("""
        import os, sys, time
        from progressistad.client import RemoteTqdm
        bar = RemoteTqdm(total=None, task_id="survivor", disable=True)
        while not os.path.exists(sys.argv[1]):
            bar.update(1)
            time.sleep(0.01)
        bar.close()
    """, first.url, args=[str(stop)])
    try:
        wait_task(first, "survivor")
        first.kill()
        time.sleep(0.5)
        assert program.poll() is None, "the program stopped when the daemon went away"
        second = daemon_factory(port=first.port)
        wait_task(second, "survivor")
        stop.touch()
        assert program.wait(30) == 0
        assert wait_task(second, "survivor", status="close")["n"] > 0
    finally:
        program.kill()


PROGRAM_1000 = """
    import logging, time
    logging.basicConfig()
    from progressistad.client import RemoteTqdm
    start = time.monotonic()
    for _ in RemoteTqdm(range(300000), task_id="refused"):
        pass
    with RemoteTqdm(total=5, task_id="refused-2") as bar:
        bar.update(5)
    print(time.monotonic() - start)
"""


def test_401_leaves_the_program_running_and_logs_once(daemon_factory):
    daemon = daemon_factory(env={"PROGRESSISTA_API_TOKEN": "s3cret"})
    refused = run_program(PROGRAM_1000, daemon.url, {"PROGRESSISTA_API_TOKEN": "wrong"})
    assert refused.returncode == 0, refused.stderr
    assert refused.stderr.count("cannot report progress") == 1, refused.stderr
    assert "401" in refused.stderr and "s3cret" not in refused.stderr and "wrong" not in refused.stderr
    auth = {"Authorization": "Bearer s3cret"}
    assert tasks(daemon, auth) == {}
    accepted = run_program(PROGRAM_1000, daemon.url, {"PROGRESSISTA_API_TOKEN": "s3cret"})
    assert accepted.returncode == 0 and "cannot report" not in accepted.stderr, accepted.stderr
    assert wait_task(daemon, "refused", headers=auth, status="close")["n"] == 300000


def test_503_when_the_daemon_is_full(daemon_factory):
    daemon = daemon_factory(["--max-tasks", "1"])
    post(daemon, {"task_id": "occupant"})
    done = run_program(PROGRAM_1000, daemon.url)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("cannot report progress") == 1 and "503" in done.stderr, done.stderr
    assert set(tasks(daemon)) == {"occupant"}


def test_a_silent_server_does_not_slow_the_loop():
    with RecordingServer() as server:
        server.server.RequestHandlerClass.do_POST = lambda self: time.sleep(5)
        done = run_program(PROGRAM_1000, server.url, {"PROGRESSISTA_REQUEST_TIMEOUT": "0.5"},
                           timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("cannot report progress") == 1, done.stderr


def test_fork_multiprocessing_and_threads(daemon):
    done = run_program("""
        import multiprocessing, os, threading
        from concurrent.futures import ThreadPoolExecutor
        from progressistad.client import RemoteTqdm, flush

        def work(name):
            with RemoteTqdm(total=50, task_id=name, disable=True) as bar:
                for _ in range(50):
                    bar.update(1)
            return os.getpid()

        if __name__ == "__main__":
            parent = RemoteTqdm(total=4, task_id="parent", disable=True)
            pid = os.fork()
            if pid == 0:
                work(f"forked-{os.getpid()}")
                flush()
                os._exit(0)
            os.waitpid(pid, 0)
            with multiprocessing.get_context("fork").Pool(2) as pool:
                pids = set(pool.map(work, [f"pool-{i}" for i in range(4)]))
            with ThreadPoolExecutor(4) as threads:
                list(threads.map(work, [f"thread-{i}" for i in range(4)]))
            parent.update(4)
            parent.close()
            print(pid)
    """, daemon.url)
    assert done.returncode == 0, done.stderr
    child = done.stdout.strip()
    names = [f"forked-{child}", "parent"] + [f"pool-{i}" for i in range(4)] + [
        f"thread-{i}" for i in range(4)]
    for name in names:
        assert wait_task(daemon, name, status="close")["n"] in (4, 50)
    assert wait_task(daemon, f"forked-{child}")["meta"] == {"parent_id": "parent"}


def test_exit_flushes_bars_never_closed(daemon):
    done = run_program("""
        from progressistad.client import RemoteTqdm
        bar = RemoteTqdm(total=100, task_id="abandoned", push_every=60)
        bar.update(42)
        closed = RemoteTqdm(total=3, task_id="closed-at-the-end", push_every=60)
        closed.update(3)
        closed.close()
    """, daemon.url)
    assert done.returncode == 0, done.stderr
    assert wait_task(daemon, "abandoned")["n"] == 42
    assert wait_task(daemon, "closed-at-the-end")["status"] == "close"


def test_terminal_output_is_tqdms_own(daemon):
    code = """
        import io, sys
        from tqdm import tqdm
        from progressistad.client import RemoteTqdm
        cls = RemoteTqdm if sys.argv[1] == "remote" else tqdm
        out = io.StringIO()
        for _ in cls(range(7), desc="same", file=out, mininterval=0, bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt}"):
            pass
        print(repr(out.getvalue()))
    """
    plain = run_program(code, daemon.url, args=["plain"])
    remote = run_program(code, daemon.url, args=["remote"])
    assert plain.returncode == remote.returncode == 0, remote.stderr
    assert plain.stdout == remote.stdout and "same: 100%" in remote.stdout


def test_a_bad_server_url_is_logged_once_and_the_loop_runs():
    done = run_program("""
        import logging
        logging.basicConfig()
        from progressistad.client import RemoteTqdm
        for _ in range(3):
            for _ in RemoteTqdm(range(10), disable=True):
                pass
        print("done")
    """, "localhost:8000")
    assert done.returncode == 0 and done.stdout == "done\n", done.stderr
    assert done.stderr.count("bars are not reported") == 1, done.stderr
    assert "server URL must be http:// or https://" in done.stderr
