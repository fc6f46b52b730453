"""Startup with a large state file and run history: time to READY=1, the write that follows, and loop latency.

For each task count it writes a state file and, beside it, the run history's SQLite file
with `--history-runs` realistic runs of `--history-jobs` jobs (bench/history.py's runs,
written through the history's own backend, ending up to now; copied afresh for every start),
starts the daemon with NOTIFY_SOCKET pointing at a datagram socket of its own, and measures
the time from spawn to READY=1. It then changes one task (which triggers a full write of the
state file on the writer thread), polls /health until /metrics counts that write, and prints
the write time and the slowest /health answer meanwhile: the IOLoop's longest stall during a
full write. Prints figures only, asserts nothing. Loopback only, bounded in time.

    python bench/startup.py                      # 0 and 100,000 tasks, 100,000 runs, 3 starts each
    python bench/startup.py --tasks 100000 --runs 5 --history-runs 0
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Dict, List

import harness

import history as history_bench
from harness import free_port
from progressistad.history.service import DEFAULT_FILE_NAME
from progressistad.history.sqlite import SQLiteHistory

WRITE_TIMEOUT = 120.0
"""Longest wait for the state write that follows the first change."""
HISTORY_JOBS = 200
TARGET_READY_S = 1.5


def write_state(path: str, count: int) -> int:
    now = time.time()
    tasks = {}
    for i in range(count):
        task_id = f"host-{i % 97}:job-{i}"
        tasks[task_id] = {
            "task_id": task_id, "desc": f"Processing shard {i}", "total": 10000, "n": i % 10000,
            "unit": "it", "status": ("update", "close", "error", "stale")[i % 4],
            "timestamp": now - 30, "meta": {"host": f"host-{i % 97}", "rank": i % 8},
            "created_at": now - 3600, "updated_at": now - 30 - i * 1e-4, "done_at": None,
            "stale_at": None, "rate": 12.5, "eta": 100.0,
        }
    with open(path, "w") as stream:
        json.dump({"version": 2, "saved_at": now, "tasks": tasks}, stream)
    return os.path.getsize(path)


def write_history(path: str, runs: int, jobs: int) -> int:
    """The history database at `path` with `runs` runs, the last ending now; its size."""
    asyncio.run(fill_history(path, runs, jobs))
    return os.path.getsize(path)


async def fill_history(path: str, runs: int, jobs: int) -> None:
    start = time.time() - runs * history_bench.RUN_SPACING
    backend = SQLiteHistory(path, max_runs=max(runs, 1))
    await history_bench.fill(backend, history_bench.realistic_runs(runs, jobs, start=start))
    if not await backend.close():
        raise RuntimeError(f"runs not written to {path}: {backend.health()}")


def place_history(pristine: str, state: str) -> None:
    """A fresh copy of the built history beside `state`, where the daemon looks by default."""
    target = os.path.join(os.path.dirname(state), DEFAULT_FILE_NAME)
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(target + suffix):
            os.unlink(target + suffix)
    if pristine:
        shutil.copyfile(pristine, target)


def get(url: str, timeout: float = 30.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def metric(text: str, name: str) -> float:
    value = harness.metric_in(text, name)
    return float("nan") if value is None else value


def one_run(state: str, count: int, workdir: str) -> Dict[str, float]:
    notify_path = os.path.join(workdir, "notify.sock")
    if os.path.exists(notify_path):
        os.unlink(notify_path)
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    notify.settimeout(120)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROGRESSISTA_")}
    env.update(NOTIFY_SOCKET=notify_path, PROGRESSISTA_CONFIG="")
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "progressistad", "--host", "127.0.0.1", "--port", str(port),
         "--storage-path", state, "--max-tasks", str(max(count * 2, 10000)),
         "--persist-interval", "1", "--log-level", "warning"],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while notify.recv(4096) != b"READY=1":
            pass
        ready = time.perf_counter() - started
        base = f"http://127.0.0.1:{port}"
        assert json.loads(get(base + "/health"))["tasks"] == count
        request = urllib.request.Request(base + "/progress", method="POST",
                                         data=b'{"task_id": "poke", "n": 1}')
        get_started = time.perf_counter()
        urllib.request.urlopen(request, timeout=30).read()
        slowest = 0.0
        metrics = ""
        while time.perf_counter() - get_started < WRITE_TIMEOUT:
            t0 = time.perf_counter()
            get(base + "/health")
            slowest = max(slowest, time.perf_counter() - t0)
            metrics = get(base + "/metrics").decode()
            if metric(metrics, "progressista_persist_seconds_count") >= 1:
                break
            time.sleep(0.01)
        stop_started = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        return {
            "ready": ready,
            "write": metric(metrics, "progressista_persist_seconds_sum")
            / max(1.0, metric(metrics, "progressista_persist_seconds_count")),
            "stall": slowest,
            "stop": time.perf_counter() - stop_started,
        }
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        notify.close()


def measure(tasks: int = 100_000, history_runs: int = 100_000, runs: int = 5,
            history_jobs: int = HISTORY_JOBS) -> Dict[str, float]:
    """`runs` starts with `tasks` tasks and `history_runs` runs on disk: median and min of each figure (s)."""
    workdir = tempfile.mkdtemp(prefix="progressistad-bench-")
    try:
        state_dir = os.path.join(workdir, "state")
        os.mkdir(state_dir)
        pristine = ""
        history_bytes = 0
        if history_runs:
            pristine = os.path.join(workdir, "history-pristine.sqlite3")
            history_bytes = write_history(pristine, history_runs, history_jobs)
        state = os.path.join(state_dir, "state.json")
        results: List[Dict[str, float]] = []
        for _ in range(runs):
            state_bytes = write_state(state, tasks)
            place_history(pristine, state)
            results.append(one_run(state, tasks, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    figures: Dict[str, float] = {"tasks": tasks, "history_runs": history_runs, "runs": runs,
                                 "state_mb": state_bytes / 1e6, "history_mb": history_bytes / 1e6}
    for key in results[0]:
        figures[f"{key}_s"] = statistics.median(r[key] for r in results)
        figures[f"{key}_min_s"] = min(r[key] for r in results)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, nargs="+", default=[0, 100_000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--history-runs", type=int, default=100_000,
                        help="runs in the history database beside the state file (0: no file)")
    parser.add_argument("--history-jobs", type=int, default=HISTORY_JOBS)
    args = parser.parse_args()
    print(f"load average {harness.load_average()}; "
          f"history: {args.history_runs} runs of {args.history_jobs} jobs")
    print(f"{'tasks':>8} {'file MB':>8} {'READY=1 s':>10} {'write s':>8} "
          f"{'max /health s':>14} {'stop s':>7} {'min READY=1 s':>14} {'history MB':>11}"
          f"   (median of {args.runs} runs)")
    for count in args.tasks:
        f = measure(count, args.history_runs, args.runs, args.history_jobs)
        print(f"{count:>8} {f['state_mb']:>8.1f} {f['ready_s']:>10.3f} {f['write_s']:>8.3f} "
              f"{f['stall_s']:>14.3f} {f['stop_s']:>7.3f} {f['ready_min_s']:>14.3f} {f['history_mb']:>11.1f}")
    print(f"load average {harness.load_average()}")


if __name__ == "__main__":
    main()
