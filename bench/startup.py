"""Startup with a large state file: time to READY=1, the write that follows, and loop latency.

For each task count it writes a state file, starts the daemon with NOTIFY_SOCKET
pointing at a datagram socket of its own, and measures the time from spawn to
READY=1. It then changes one task (which triggers a full write of the state
file on the writer thread), polls /health until /metrics counts that write, and
prints the write time and the slowest /health answer meanwhile: the IOLoop's
longest stall during a full write.
Prints figures only, asserts nothing. Loopback only, bounded in time.

    python bench/startup.py                      # 0 and 100,000 tasks, 3 runs each
    python bench/startup.py --tasks 100000 --runs 5
"""

from __future__ import annotations

import argparse
import json
import os
import re
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

WRITE_TIMEOUT = 120.0
"""Longest wait for the state write that follows the first change."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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


def get(url: str, timeout: float = 30.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def metric(text: str, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else float("nan")


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, nargs="+", default=[0, 100_000])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="progressistad-bench-")
    try:
        print(f"{'tasks':>8} {'file MB':>8} {'READY=1 s':>10} {'write s':>8} "
              f"{'max /health s':>14} {'stop s':>7}   (median of {args.runs} runs)")
        for count in args.tasks:
            state = os.path.join(workdir, "state.json")
            results: List[Dict[str, float]] = []
            for _ in range(args.runs):
                size = write_state(state, count)
                results.append(one_run(state, count, workdir))
            med = {key: statistics.median(r[key] for r in results) for key in results[0]}
            print(f"{count:>8} {size / 1e6:>8.1f} {med['ready']:>10.3f} {med['write']:>8.3f} "
                  f"{med['stall']:>14.3f} {med['stop']:>7.3f}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
