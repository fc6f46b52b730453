"""Ingest throughput: progressistad against a bare Tornado handler doing the same JSON parse.

Runs wrk (Debian's package) on loopback with bench/post.lua, side by side in one run, and
prints a table of events per second and the ratio to the bare handler. Bounded in time:
every measurement lasts --seconds.

    python bench/ingest.py                       # 1000 tasks, 5 dashboards
    python bench/ingest.py --tasks 1 1000 10000 --dashboards 0 5 100
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer")


@contextlib.contextmanager
def process(argv, **kwargs):
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kwargs)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def bare_server():
    port = free_port()
    with process([sys.executable, str(HERE / "bare_server.py"), str(port)]):
        wait_http(f"http://127.0.0.1:{port}/")
        yield f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def daemon(extra_args=()):
    port = free_port()
    argv = [sys.executable, "-m", "progressistad", "--host", "127.0.0.1", "--port", str(port),
            "--max-tasks", "200000", "--log-level", "warning", *extra_args]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROGRESSISTA_")}
    with process(argv, cwd=REPO, env=env):
        wait_http(f"http://127.0.0.1:{port}/health")
        yield f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def dashboards(base_url: str, how_many: int):
    if how_many == 0:
        yield
        return
    url = base_url.replace("http://", "ws://") + "/ws?protocol=delta"
    with process([sys.executable, str(HERE / "dashboards.py"), url, str(how_many)]):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            health = json.load(urllib.request.urlopen(base_url + "/health"))
            if health.get("dashboards", 0) >= how_many:
                break
            time.sleep(0.1)
        yield


def populate(base_url: str, tasks: int) -> None:
    for start in range(0, tasks, 1000):
        batch = [{"task_id": f"bench-{i}", "n": 0, "total": 1000000, "desc": "bench"}
                 for i in range(start, min(tasks, start + 1000))]
        request = urllib.request.Request(base_url + "/progress", data=json.dumps(batch).encode(),
                                         headers={"Content-Type": "application/json"})
        urllib.request.urlopen(request).read()


def wrk(url: str, tasks: int, batch: int, seconds: float, connections: int) -> dict:
    env = dict(os.environ, TASKS=str(tasks), BATCH=str(batch))
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(HERE / "post.lua"), url + "/progress"],
        env=env, capture_output=True, text=True, timeout=seconds + 30, check=True,
    ).stdout
    match = re.search(r"BENCH requests=(\d+) errors=(\d+) non2xx=(\d+) seconds=([\d.]+) "
                      r"p50_ms=([\d.]+) p99_ms=([\d.]+)", out)
    if not match:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    requests, errors, non2xx, secs, p50, p99 = match.groups()
    rps = int(requests) / float(secs)
    return {"rps": rps, "events": rps * batch, "errors": int(errors) + int(non2xx),
            "p50": float(p50), "p99": float(p99)}


def measure(tasks: int, watchers: int, batch: int, seconds: float, connections: int) -> dict:
    with bare_server() as url:
        bare = wrk(url, tasks, batch, seconds, connections)
    with daemon() as url:
        populate(url, tasks)
        with dashboards(url, watchers):
            ours = wrk(url, tasks, batch, seconds, connections)
    return {"tasks": tasks, "dashboards": watchers, "batch": batch, "bare": bare, "ours": ours}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, nargs="+", default=[1000])
    parser.add_argument("--dashboards", type=int, nargs="+", default=[5])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 100])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 1
    print(f"# ingest: wrk -t1 -c{args.connections} -d{args.seconds}s, loopback, {os.cpu_count()} cores, "
          f"Python {sys.version.split()[0]}")
    header = (f"{'tasks':>6} {'dash':>5} {'batch':>5} | {'bare ev/s':>10} | {'ours ev/s':>10} "
              f"{'p50 ms':>7} {'p99 ms':>7} {'errors':>6} | {'ratio':>5}")
    print(header)
    print("-" * len(header))
    for tasks in args.tasks:
        for watchers in args.dashboards:
            for batch in args.batch:
                row = measure(tasks, watchers, batch, args.seconds, args.connections)
                if args.json:
                    print(json.dumps(row))
                    continue
                bare, ours = row["bare"], row["ours"]
                print(f"{tasks:>6} {watchers:>5} {batch:>5} | {bare['events']:>10.0f} | "
                      f"{ours['events']:>10.0f} {ours['p50']:>7.2f} {ours['p99']:>7.2f} "
                      f"{ours['errors']:>6} | {ours['events'] / bare['events']:>5.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
