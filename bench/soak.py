"""Soak: mixed load against a real daemon for a while, sampling its memory and open files.

Events (single and batches, new task ids all the time), dashboards coming and
going (some that never read), single and bulk deletes, and cleanup removing
finished tasks. Every few seconds the daemon's RSS and open file descriptors
are sampled; at the end the series is printed with a verdict: flat after
warm-up, or growing. Loopback only, bounded in time.

    python bench/soak.py [--minutes 30] [--sample-seconds 5] [--rate 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional, Tuple

import tornado.httpclient
import tornado.websocket

REPO = Path(__file__).resolve().parent.parent
WARM_UP_FRACTION = 0.2
RSS_SLACK_FRACTION = 0.10
RSS_SLACK_KIB = 4096
FD_SLACK = 8


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def proc_status(pid: int) -> Tuple[int, int]:
    """(RSS in KiB, open file descriptors) of process `pid`."""
    rss = 0
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


class Soak:
    """The load generators and the sampler, sharing one deadline."""

    def __init__(self, url: str, pid: int, seconds: float, sample_seconds: float, rate: float):
        self.url = url
        self.ws_url = url.replace("http://", "ws://", 1) + "/ws"
        self.pid = pid
        self.deadline = time.monotonic() + seconds
        self.sample_seconds = sample_seconds
        self.rate = rate
        self.client = tornado.httpclient.AsyncHTTPClient(max_clients=16)
        self.rng = random.Random(42)
        self.samples: List[Tuple[float, int, int, int, int]] = []
        self.counts = {"events": 0, "errors": 0, "dashboards": 0, "deletes": 0, "ws_messages": 0}
        self._next_id = 0

    def running(self) -> bool:
        return time.monotonic() < self.deadline

    async def fetch(self, method: str, path: str, body: Optional[object] = None):
        response = await self.client.fetch(
            self.url + path, method=method, raise_error=False, request_timeout=30,
            body=None if body is None else json.dumps(body), allow_nonstandard_methods=True)
        if response.code >= 500 or response.code == 599:
            self.counts["errors"] += 1
        return response

    def new_task_id(self) -> str:
        self._next_id += 1
        return f"soak-{self._next_id}"

    async def producer(self, batch: int) -> None:
        """Tasks that start, progress and close; a new id for every run."""
        live: List[str] = []
        pause = batch / (self.rate / 2)
        while self.running():
            while len(live) < 50:
                live.append(self.new_task_id())
            events = []
            for _ in range(batch):
                task_id = self.rng.choice(live)
                status = "close" if self.rng.random() < 0.05 else "update"
                events.append({"task_id": task_id, "n": self.rng.randint(0, 1000), "total": 1000,
                               "status": status, "desc": "soak " * self.rng.randint(0, 20)})
                if status == "close":
                    live.remove(task_id)
                    live.append(self.new_task_id())
            await self.fetch("POST", "/progress", events if batch > 1 else events[0])
            self.counts["events"] += len(events)
            await asyncio.sleep(pause)

    async def dashboard(self, slow: bool) -> None:
        """Dashboards that connect, read (or not) for a while, and leave."""
        while self.running():
            protocol = self.rng.choice(["", "?protocol=delta"])
            try:
                conn = await tornado.websocket.websocket_connect(self.ws_url + protocol)
            except Exception:
                self.counts["errors"] += 1
                await asyncio.sleep(1)
                continue
            self.counts["dashboards"] += 1
            stay = time.monotonic() + self.rng.uniform(1, 15)
            while time.monotonic() < stay and self.running():
                if slow:
                    await asyncio.sleep(0.5)
                    continue
                message = await conn.read_message()
                if message is None:
                    break
                self.counts["ws_messages"] += 1
            conn.close()
            await asyncio.sleep(self.rng.uniform(0, 2))

    async def deleter(self) -> None:
        while self.running():
            await asyncio.sleep(2)
            for _ in range(5):
                await self.fetch("DELETE", f"/tasks/soak-{self.rng.randint(1, max(1, self._next_id))}")
                self.counts["deletes"] += 1
            await self.fetch("DELETE", "/tasks?status=close&older_than=2")
            self.counts["deletes"] += 1

    async def sampler(self) -> None:
        started = time.monotonic()
        while self.running():
            rss, fds = proc_status(self.pid)
            health = json.loads((await self.fetch("GET", "/health")).body or b"{}")
            self.samples.append((time.monotonic() - started, rss, fds, health.get("tasks", -1),
                                 health.get("dashboards", -1)))
            print(f"{self.samples[-1][0]:8.0f}s  rss {rss:7d} KiB  fds {fds:4d}  "
                  f"tasks {self.samples[-1][3]:5d}  dashboards {self.samples[-1][4]:3d}", flush=True)
            await asyncio.sleep(self.sample_seconds)

    async def run(self) -> None:
        jobs = [self.producer(1), self.producer(1), self.producer(50), self.deleter(), self.sampler()]
        jobs += [self.dashboard(slow=False) for _ in range(8)] + [self.dashboard(slow=True) for _ in range(2)]
        await asyncio.gather(*jobs)


def verdict(samples: List[Tuple[float, int, int, int, int]]) -> Tuple[bool, str]:
    """Flat when the last quarter's RSS median and fd peak stay near those just after warm-up."""
    steady = samples[int(len(samples) * WARM_UP_FRACTION):]
    if len(steady) < 8:
        return False, "too few samples after warm-up to judge"
    quarter = max(2, len(steady) // 4)
    early, late = steady[:quarter], steady[-quarter:]
    rss_early = statistics.median(s[1] for s in early)
    rss_late = statistics.median(s[1] for s in late)
    fd_early = max(s[2] for s in early)
    fd_late = max(s[2] for s in late)
    rss_ok = rss_late <= rss_early * (1 + RSS_SLACK_FRACTION) or rss_late - rss_early <= RSS_SLACK_KIB
    fd_ok = fd_late <= fd_early + FD_SLACK
    text = (f"RSS median after warm-up {rss_early:.0f} KiB, at the end {rss_late:.0f} KiB "
            f"({rss_late - rss_early:+.0f} KiB); open fds peak {fd_early} then {fd_late}")
    return rss_ok and fd_ok, text


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--sample-seconds", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=200.0, help="target events per second")
    args = parser.parse_args(argv)
    state = tempfile.mkdtemp(prefix="progressistad-soak-")
    port = free_port()
    command = [sys.executable, "-m", "progressistad", "--host", "127.0.0.1", "--port", str(port),
               "--storage-path", os.path.join(state, "state.json"), "--cleanup-interval", "1",
               "--retention-seconds", "5", "--max-tasks", "5000", "--log-level", "warning"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROGRESSISTA_")}
    daemon = subprocess.Popen(command, cwd=REPO, env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        soak = Soak(url, daemon.pid, args.minutes * 60, args.sample_seconds, args.rate)
        started = time.monotonic()
        asyncio.run(soak.run())
        elapsed = time.monotonic() - started
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(30)
    flat, text = verdict(soak.samples)
    counts = soak.counts
    print(f"\n{elapsed / 60:.1f} min: {counts['events']} events ({counts['events'] / elapsed:.0f}/s), "
          f"{counts['dashboards']} dashboard connections, {counts['ws_messages']} WebSocket messages "
          f"read, {counts['deletes']} deletes, {counts['errors']} errors (5xx or failed)")
    print(f"{text}: {'FLAT after warm-up' if flat else 'GROWING'}")
    print(f"daemon exit status {daemon.returncode}")
    return 0 if flat and not counts["errors"] and daemon.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
