"""Soak: mixed load against a real daemon with every feature on, sampling its memory and files.

Events (single and batches, new task ids all the time, in ten groups and jobs), tasks that
finish, fail, stall and sometimes resume, dashboards coming and going (some that never
read), single and bulk deletes, and cleanup removing finished tasks. Every feature on (SPEC
16): 10 notification routes matching every task, to a webhook receiver in this process that
counts the messages it gets; the history in a file of the temporary directory, bounded by
--history-max-runs; 4 metrics and one 80-character log line in one event of ten. Every few
seconds the daemon's RSS, open file descriptors and the history database's size are sampled;
at the end the series is printed with a verdict (flat after warm-up, or growing), and the
notifications sent, failed and dropped as /metrics counts them next to those received.
Loopback only, bounded in time.

    python bench/soak.py [--minutes 30] [--sample-seconds 5] [--rate 200] [--without FEATURE]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import random
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Deque, Dict, List, Optional, Sequence, Set, Tuple

import tornado.httpclient
import tornado.websocket

REPO = Path(__file__).resolve().parent.parent
WARM_UP_FRACTION = 0.2
RSS_SLACK_FRACTION = 0.10
RSS_SLACK_KIB = 4096
FD_SLACK = 8
DB_SLACK_FRACTION = 0.10
DB_SLACK_BYTES = 256 * 1024
"""The history file's late peak may pass its early peak by this much (SQLite's page reuse)."""
DAEMON_OPTIONS = ["--cleanup-interval", "1", "--retention-seconds", "5", "--stale-seconds", "5",
                  "--max-task-age", "20", "--max-tasks", "5000"]
"""Finished tasks leave after 5 s, stalled ones go stale after 5 s and leave after 20 s."""
FEATURES = ("notifications", "history", "telemetry")
TELEMETRY_EVERY = 10
LOG_LINE = "s" * 80
GROUPS = 10
NOTIFY_ROUTES = 10
ROUTE_KINDS = ("group-wait = 10\n", "group-wait = 5\nrate-limit = 0\n")
"""Half the routes gather and rate-limit as packaged (the excess folds into summaries), half
send every 5-second burst."""
HISTORY_MAX_RUNS = 2000
"""Runs the soak's history keeps: reached within the warm-up, so the file must stop growing."""
RESUME_AFTER = 8.0
"""Seconds after which an abandoned task (stale after 5 s) may get an event again."""
SETTLE_SECONDS = 45.0
"""How long the notification queue may take to empty once the load stops: room for five retries
of a message whose first attempts failed (backoff from 1 s, doubling)."""
Sample = Tuple[float, int, int, int, int, int, int]
"""Seconds in, RSS KiB, open fds, tasks, dashboards, history file bytes and history database
bytes (-1 without)."""
FILE_BYTES, DATABASE_BYTES = 5, 6


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


class _Server(ThreadingHTTPServer):
    request_queue_size = 64
    """The daemon opens several connections at once; the stdlib's 5 could drop their SYNs."""
    daemon_threads = True


class WebhookReceiver:
    """A loopback HTTP server answering 204 to every POST, keeping each message's id, in its own
    thread."""

    def __init__(self) -> None:
        receiver = self
        self.ids: Set[str] = set()
        self.requests = 0
        self._lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (the stdlib's name)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.note(json.loads(body)["id"])
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def note(self, message_id: str) -> None:
        with self._lock:
            self.requests += 1
            self.ids.add(message_id)

    @property
    def received(self) -> int:
        """Messages received, a repeat of one (a retry) counted once."""
        with self._lock:
            return len(self.ids)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def route_file(directory: str, receiver_url: str) -> str:
    """NOTIFY_ROUTES webhook routes to `receiver_url`, every event kind, match *."""
    path = Path(directory) / "notify.conf"
    path.write_text("".join(
        f"[r{i}]\nurl = {receiver_url}/r{i}\nevents = close, error, stalled, resumed, overdue\n"
        f"match = *\n{ROUTE_KINDS[i % len(ROUTE_KINDS)]}" for i in range(NOTIFY_ROUTES)))
    return str(path)


def history_file(directory: str) -> str:
    return os.path.join(directory, "history.sqlite3")


def feature_options(directory: str, features: Sequence[str], receiver_url: Optional[str],
                    max_runs: int = HISTORY_MAX_RUNS) -> List[str]:
    """The daemon's options for the soak's features: routes and history files in `directory`."""
    options = ["--notify-config",
               route_file(directory, receiver_url) if "notifications" in features else ""]
    if "history" in features:
        return options + ["--history-path", history_file(directory),
                          "--history-max-runs", str(max_runs)]
    return options + ["--history-max-runs", "0"]


def notification_counts(metrics: str) -> Dict[str, int]:
    """Messages by result (sent, failed, dropped) and the queue's length, from /metrics."""
    counts = collections.Counter({"sent": 0, "failed": 0, "dropped": 0, "queued": 0})
    for line in metrics.splitlines():
        if line.startswith("progressista_notifications_total{"):
            result = line.split('result="', 1)[1].split('"', 1)[0]
            counts[result] += int(float(line.rsplit(" ", 1)[1]))
        elif line.startswith("progressista_notification_queue_length "):
            counts["queued"] = int(float(line.rsplit(" ", 1)[1]))
    return dict(counts)


class Soak:
    """The load generators and the sampler, sharing one deadline."""

    def __init__(self, url: str, pid: int, seconds: float, sample_seconds: float, rate: float,
                 features: Sequence[str] = FEATURES, history_path: Optional[str] = None,
                 receiver: Optional[WebhookReceiver] = None, quiet: bool = False):
        self.url = url
        self.ws_url = url.replace("http://", "ws://", 1) + "/ws"
        self.pid = pid
        self.deadline = time.monotonic() + seconds
        self.sample_seconds = sample_seconds
        self.rate = rate
        self.client: Optional[tornado.httpclient.AsyncHTTPClient] = None
        self.rng = random.Random(42)
        self.telemetry = "telemetry" in features
        self.history_path = history_path
        self.receiver = receiver
        self.quiet = quiet
        self.samples: List[Sample] = []
        self.counts = {"events": 0, "errors": 0, "dashboards": 0, "deletes": 0, "ws_messages": 0,
                       "resumed": 0, "degraded": 0}
        self.notifications: Dict[str, int] = {}
        self._next_id = 0
        self._abandoned: Deque[Tuple[float, str]] = collections.deque()

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
        return task_id(self._next_id)

    async def producer(self, batch: int) -> None:
        """Tasks that start, progress and finish or fail; a new id for every run."""
        live: List[str] = []
        pause = batch / (self.rate / 2)
        while self.running():
            while len(live) < 50:
                live.append(self.new_task_id())
            events = [self.resume()] if self.resumable() else []
            while len(events) < batch:
                task = self.rng.choice(live)
                roll = self.rng.random()
                status = "close" if roll < 0.04 else "error" if roll < 0.05 else "update"
                events.append(self.event(task, status))
                if roll < 0.07:
                    # A close, an error, or a task abandoned without one: it stalls.
                    live.remove(task)
                    live.append(self.new_task_id())
                    if status == "update" and self.rng.random() < 0.3:
                        self._abandoned.append((time.monotonic(), task))
            await self.fetch("POST", "/progress", events if batch > 1 else events[0])
            self.counts["events"] += len(events)
            await asyncio.sleep(pause)

    def resumable(self) -> bool:
        return bool(self._abandoned) and self._abandoned[0][0] < time.monotonic() - RESUME_AFTER

    def resume(self) -> dict:
        """An event for a task stale since it was abandoned (a `resumed`), which then finishes."""
        self.counts["resumed"] += 1
        return self.event(self._abandoned.popleft()[1], "close")

    def event(self, task: str, status: str) -> dict:
        job = task.split(":", 1)[0]
        event = {"task_id": task, "n": self.rng.randint(0, 1000), "total": 1000,
                 "status": status, "desc": "soak " * self.rng.randint(0, 20), "meta": {"job": job}}
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
                await self.fetch("DELETE", f"/tasks/{task_id(self.rng.randint(1, max(1, self._next_id)))}")
                self.counts["deletes"] += 1
            await self.fetch("DELETE", "/tasks?status=close&older_than=2")
            self.counts["deletes"] += 1

    async def sampler(self) -> None:
        started = time.monotonic()
        while self.running():
            rss, fds = proc_status(self.pid)
            health = json.loads((await self.fetch("GET", "/health")).body or b"{}")
            if health.get("status") != "ok":
                self.counts["degraded"] += 1
            db = file_size(self.history_path)
            self.samples.append((time.monotonic() - started, rss, fds, health.get("tasks", -1),
                                 health.get("dashboards", -1), db,
                                 database_bytes(self.history_path)))
            if not self.quiet:
                print(f"{self.samples[-1][0]:8.0f}s  rss {rss:7d} KiB  fds {fds:4d}  "
                      f"tasks {self.samples[-1][3]:5d}  dashboards {self.samples[-1][4]:3d}"
                      + (f"  history {db} B ({self.samples[-1][6]} B of pages)" if db >= 0 else "")
                      + (f"  notifications {self.receiver.received}" if self.receiver else ""),
                      flush=True)
            await asyncio.sleep(self.sample_seconds)

    async def settle(self) -> None:
        """Once the load stops: /metrics' notification counts, with what the receiver had got
        by the time they were read, when the queue is empty and the receiver has every message
        /metrics says was sent, or SETTLE_SECONDS on.

        Tasks left behind still go stale and leave after the load, so messages may still come
        after this returns: the verdict compares the two counts read together, not later ones.
        """
        if self.receiver is None:
            return
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            before = self.receiver.received
            counts = notification_counts((await self.fetch("GET", "/metrics")).body.decode())
            # Read on both sides of the fetch: a message that arrived meanwhile may be counted
            # by one and not the other, and then the two are not compared this time.
            counts["received"] = self.receiver.received
            self.notifications = counts
            if (not counts["queued"] and before == counts["received"] == counts["sent"]
                    or time.monotonic() > deadline):
                return
            await asyncio.sleep(0.5)

    async def run(self) -> None:
        self.client = tornado.httpclient.AsyncHTTPClient(max_clients=16)
        jobs = [self.producer(1), self.producer(1), self.producer(50), self.deleter(), self.sampler()]
        jobs += [self.dashboard(slow=False) for _ in range(8)] + [self.dashboard(slow=True) for _ in range(2)]
        await asyncio.gather(*jobs)
        await self.settle()


def task_id(number: int) -> str:
    """The soak's `number`th task, in one of GROUPS groups (and jobs of the same name)."""
    return f"soak{number % GROUPS}:{number}"


async def drain(conn) -> None:
    while await conn.read_message() is not None:
        pass


def file_size(path: Optional[str]) -> int:
    """Bytes of `path` with its SQLite journal files, -1 without a path."""
    if path is None:
        return -1
    return sum(os.path.getsize(p) for p in (path, path + "-wal", path + "-shm") if os.path.exists(p))


def database_bytes(path: Optional[str]) -> int:
    """The history database's pages (free ones too) as a reader sees them: its size once the
    write-ahead log is checkpointed, whatever that log's own high-water mark; -1 without."""
    if path is None or not os.path.exists(path):
        return -1
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as db:
        return db.execute("PRAGMA page_count").fetchone()[0] * db.execute(
            "PRAGMA page_size").fetchone()[0]


def steady_quarters(samples: List[Sample]) -> Tuple[List[Sample], List[Sample]]:
    """The first and the last quarter of the samples after warm-up."""
    steady = samples[int(len(samples) * WARM_UP_FRACTION):]
    quarter = max(2, len(steady) // 4)
    return steady[:quarter], steady[-quarter:]


def history_verdict(samples: List[Sample], column: int) -> Tuple[bool, str]:
    """Flat when the history's size in `column` peaks in the last quarter near its peak in the
    first quarter after warm-up."""
    early, late = steady_quarters(samples)
    db_early, db_late = max(s[column] for s in early), max(s[column] for s in late)
    flat = db_late <= max(db_early * (1 + DB_SLACK_FRACTION), db_early + DB_SLACK_BYTES)
    what = "history file" if column == FILE_BYTES else "history database pages"
    return flat, f"{what} at most {db_early} then {db_late} bytes"


def verdict(samples: List[Sample]) -> Tuple[bool, str]:
    """Flat when the last quarter's RSS median, fd peak and history size stay near those just
    after warm-up."""
    if len(samples) - int(len(samples) * WARM_UP_FRACTION) < 8:
        return False, "too few samples after warm-up to judge"
    early, late = steady_quarters(samples)
    rss_early = statistics.median(s[1] for s in early)
    rss_late = statistics.median(s[1] for s in late)
    fd_early = max(s[2] for s in early)
    fd_late = max(s[2] for s in late)
    rss_ok = rss_late <= rss_early * (1 + RSS_SLACK_FRACTION) or rss_late - rss_early <= RSS_SLACK_KIB
    fd_ok = fd_late <= fd_early + FD_SLACK
    text = (f"RSS median after warm-up {rss_early:.0f} KiB, at the end {rss_late:.0f} KiB "
            f"({rss_late - rss_early:+.0f} KiB); open fds peak {fd_early} then {fd_late}")
    db_ok = True
    if samples[0][FILE_BYTES] >= 0:
        for column in (FILE_BYTES, DATABASE_BYTES):
            ok, db_text = history_verdict(samples, column)
            db_ok, text = db_ok and ok, f"{text}; {db_text}"
    return rss_ok and fd_ok and db_ok, text


def notifications_verdict(counts: Dict[str, int], receiver: WebhookReceiver) -> Tuple[bool, str]:
    """None lost: the queue empty, none failed or dropped, and the receiver had got every
    message /metrics said was sent (and no other) when `counts` were read (`Soak.settle`)."""
    received = counts["received"]
    ok = (counts["sent"] > 0 and received == counts["sent"] and not counts["queued"]
          and not counts["failed"] and not counts["dropped"])
    return ok, (f"notifications sent {counts['sent']}, received {received} (in "
                f"{receiver.requests} requests), failed {counts['failed']}, dropped "
                f"{counts['dropped']}, still queued {counts['queued']}")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--sample-seconds", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=200.0, help="target events per second")
    parser.add_argument("--without", action="append", default=[], choices=FEATURES,
                        help="turn one feature off (repeatable)")
    parser.add_argument("--history-max-runs", type=int, default=HISTORY_MAX_RUNS)
    parser.add_argument("--daemon-arg", action="append", default=[],
                        help="one more option for the daemon (repeatable)")
    args = parser.parse_args(argv)
    features = [feature for feature in FEATURES if feature not in args.without]
    state = tempfile.mkdtemp(prefix="progressistad-soak-")
    port = free_port()
    receiver = WebhookReceiver() if "notifications" in features else None
    command = [sys.executable, "-m", "progressistad", "--host", "127.0.0.1", "--port", str(port),
               "--storage-path", os.path.join(state, "state.json"), *DAEMON_OPTIONS,
               *feature_options(state, features, receiver and receiver.url, args.history_max_runs),
               "--log-level", "warning", *args.daemon_arg]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROGRESSISTA_")}
    print(f"features: {', '.join(features) or 'none'}", flush=True)
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
                    features=features, receiver=receiver,
                    history_path=history_file(state) if "history" in features else None)
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
          f"{soak._next_id} tasks, {counts['resumed']} resumed, "
          f"{counts['dashboards']} dashboard connections, {counts['ws_messages']} WebSocket messages "
          f"read, {counts['deletes']} deletes, {counts['errors']} errors (5xx or failed), "
          f"/health not ok in {counts['degraded']} of {len(soak.samples)} samples")
    first, last = soak.samples[0], soak.samples[-1]
    print(f"first sample: RSS {first[1]} KiB, {first[2]} fds; last: RSS {last[1]} KiB, "
          f"{last[2]} fds; open fds {min(s[2] for s in soak.samples)} to "
          f"{max(s[2] for s in soak.samples)}"
          + (f"; history file {last[5]} bytes ({last[6]} of pages) at the end"
             if last[5] >= 0 else ""))
    print(f"{text}: {'FLAT after warm-up' if flat else 'GROWING'}")
    delivered = True
    if receiver is not None:
        delivered, told = notifications_verdict(soak.notifications, receiver)
        print(f"{told}: {'NONE LOST' if delivered else 'LOST'}")
    print(f"daemon exit status {daemon.returncode}")
    healthy = not counts["errors"] and not counts["degraded"] and daemon.returncode == 0
    return 0 if flat and delivered and healthy else 1


if __name__ == "__main__":
    sys.exit(main())
