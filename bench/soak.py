"""Soak: mixed load against a real daemon for a while, sampling its memory and open files.

Events (single and batches, new task ids all the time), dashboards coming and
going (some that never read), single and bulk deletes, tasks left to stall,
and cleanup removing finished tasks. With --telemetry, one event in ten carries
4 metrics and one 80-character log line (SPEC 16). Every few seconds the
daemon's RSS, open file descriptors and (with --history-path) the history
database's size are sampled; at the end the series is printed with a verdict:
flat after warm-up, or growing. Loopback only, bounded in time.

History and notifications are not options of the daemon yet: --daemon-arg passes
their options through once they are (e.g. --daemon-arg=--history-path=FILE
with --history-path FILE to sample the file), and --notify-routes N is the hook
for N routes to a local webhook receiver (NOTIFY_HOOK below), refused until the
notifications are wired.

    python bench/soak.py [--minutes 30] [--sample-seconds 5] [--rate 200] [--telemetry]
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
DAEMON_OPTIONS = ["--cleanup-interval", "1", "--retention-seconds", "5", "--stale-seconds", "5",
                  "--max-task-age", "20", "--max-tasks", "5000"]
"""Finished tasks leave after 5 s, stalled ones go stale after 5 s and leave after 20 s."""
TELEMETRY_EVERY = 10
LOG_LINE = "s" * 80
NOTIFY_HOOK = None
"""Set by the notifications integration: a function (routes, receiver URL) -> daemon options
for that many webhook routes; None while notifications are not wired."""
Sample = Tuple[float, int, int, int, int, int]
"""Seconds in, RSS KiB, open fds, tasks, dashboards, history database bytes (-1 without)."""


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

    def __init__(self, url: str, pid: int, seconds: float, sample_seconds: float, rate: float,
                 telemetry: bool = False, history_path: Optional[str] = None, quiet: bool = False):
        self.url = url
        self.ws_url = url.replace("http://", "ws://", 1) + "/ws"
        self.pid = pid
        self.deadline = time.monotonic() + seconds
        self.sample_seconds = sample_seconds
        self.rate = rate
        self.client: Optional[tornado.httpclient.AsyncHTTPClient] = None
        self.rng = random.Random(42)
        self.telemetry = telemetry
        self.history_path = history_path
        self.quiet = quiet
        self.samples: List[Sample] = []
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
                roll = self.rng.random()
                status = "close" if roll < 0.05 else "update"
                events.append(self.event(task_id, status))
                if roll < 0.07:
                    # A close, or a task abandoned without one: it stalls until cleanup.
                    live.remove(task_id)
                    live.append(self.new_task_id())
            await self.fetch("POST", "/progress", events if batch > 1 else events[0])
            self.counts["events"] += len(events)
            await asyncio.sleep(pause)

    def event(self, task_id: str, status: str) -> dict:
        event = {"task_id": task_id, "n": self.rng.randint(0, 1000), "total": 1000,
                 "status": status, "desc": "soak " * self.rng.randint(0, 20)}
        if self.telemetry and self.rng.randrange(TELEMETRY_EVERY) == 0:
            event["metrics"] = {"loss": self.rng.random(), "accuracy": self.rng.random(),
                                "lr": 1e-3, "step": event["n"]}
            event["log"] = [LOG_LINE]
        return event

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
            await self.leave(conn)
            await asyncio.sleep(self.rng.uniform(0, 2))

    @staticmethod
    async def leave(conn) -> None:
        """Close a dashboard and wait for its socket to close, so that none outlives the run."""
        conn.close()
        try:
            await asyncio.wait_for(drain(conn), 10)
        except asyncio.TimeoutError:
            pass

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
            db = file_size(self.history_path)
            self.samples.append((time.monotonic() - started, rss, fds, health.get("tasks", -1),
                                 health.get("dashboards", -1), db))
            if not self.quiet:
                print(f"{self.samples[-1][0]:8.0f}s  rss {rss:7d} KiB  fds {fds:4d}  "
                      f"tasks {self.samples[-1][3]:5d}  dashboards {self.samples[-1][4]:3d}"
                      + (f"  history {db} B" if db >= 0 else ""), flush=True)
            await asyncio.sleep(self.sample_seconds)

    async def run(self) -> None:
        self.client = tornado.httpclient.AsyncHTTPClient(max_clients=16)
        jobs = [self.producer(1), self.producer(1), self.producer(50), self.deleter(), self.sampler()]
        jobs += [self.dashboard(slow=False) for _ in range(8)] + [self.dashboard(slow=True) for _ in range(2)]
        await asyncio.gather(*jobs)


async def drain(conn) -> None:
    while await conn.read_message() is not None:
        pass


def file_size(path: Optional[str]) -> int:
    """Bytes of `path` with its SQLite journal files, -1 without a path."""
    if path is None:
        return -1
    return sum(os.path.getsize(p) for p in (path, path + "-wal", path + "-shm") if os.path.exists(p))


def verdict(samples: List[Sample]) -> Tuple[bool, str]:
    """Flat when the last quarter's RSS median, fd peak and history size stay near those just
    after warm-up."""
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
    db_early = statistics.median(s[5] for s in early)
    db_late = statistics.median(s[5] for s in late)
    db_ok = db_late <= max(db_early * (1 + RSS_SLACK_FRACTION), db_early + RSS_SLACK_KIB * 1024)
    text = (f"RSS median after warm-up {rss_early:.0f} KiB, at the end {rss_late:.0f} KiB "
            f"({rss_late - rss_early:+.0f} KiB); open fds peak {fd_early} then {fd_late}")
    if db_early >= 0:
        text += f"; history database {db_early:.0f} then {db_late:.0f} bytes"
    return rss_ok and fd_ok and db_ok, text


class WebhookReceiver:
    """A loopback HTTP server answering 204 to every POST, counting them, in its own thread."""

    def __init__(self) -> None:
        import http.server
        import threading

        receiver = self
        self.received = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (the stdlib's name)
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.received += 1
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--sample-seconds", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=200.0, help="target events per second")
    parser.add_argument("--telemetry", action="store_true",
                        help="4 metrics and one 80-character log line in one event of ten")
    parser.add_argument("--history-path", help="history database file to sample (see --daemon-arg)")
    parser.add_argument("--daemon-arg", action="append", default=[],
                        help="one more option for the daemon (repeatable)")
    parser.add_argument("--notify-routes", type=int, default=0,
                        help="webhook routes to a local receiver (needs NOTIFY_HOOK)")
    args = parser.parse_args(argv)
    if args.notify_routes and NOTIFY_HOOK is None:
        parser.error("--notify-routes: notifications are not wired into the daemon yet")
    state = tempfile.mkdtemp(prefix="progressistad-soak-")
    port = free_port()
    command = [sys.executable, "-m", "progressistad", "--host", "127.0.0.1", "--port", str(port),
               "--storage-path", os.path.join(state, "state.json"), *DAEMON_OPTIONS,
               "--log-level", "warning", *args.daemon_arg]
    receiver = None
    if args.notify_routes:
        receiver = WebhookReceiver()
        command += NOTIFY_HOOK(args.notify_routes, receiver.url)
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
        soak = Soak(url, daemon.pid, args.minutes * 60, args.sample_seconds, args.rate,
                    telemetry=args.telemetry, history_path=args.history_path)
        started = time.monotonic()
        asyncio.run(soak.run())
        elapsed = time.monotonic() - started
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(30)
        if receiver is not None:
            receiver.close()
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
