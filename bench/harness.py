"""What every benchmark shares: free ports, the daemon and the bare server as subprocesses,
dashboards, populating tasks, wrk, and reading a process's resident memory."""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def raise_file_limit() -> int:
    """Raise this process's open-file limit to its hard limit (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def wait_http(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


@contextlib.contextmanager
def process(argv: Sequence[str], **kwargs) -> Iterator[subprocess.Popen]:
    kwargs.setdefault("stdout", subprocess.DEVNULL)
    kwargs.setdefault("stderr", subprocess.DEVNULL)
    proc = subprocess.Popen(list(argv), **kwargs)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def bare_server() -> Iterator[str]:
    with bare_server_process() as server:
        yield server.url


@contextlib.contextmanager
def bare_server_process() -> Iterator["Daemon"]:
    """The bare Tornado handler, with its pid for CPU accounting."""
    port = free_port()
    with process([sys.executable, str(HERE / "bare_server.py"), str(port)]) as proc:
        wait_http(f"http://127.0.0.1:{port}/")
        yield Daemon(f"http://127.0.0.1:{port}", proc.pid)


class Daemon:
    """A running progressistad subprocess: its URL and pid."""

    def __init__(self, url: str, pid: int) -> None:
        self.url = url
        self.pid = pid

    def rss_bytes(self) -> int:
        return rss_bytes(self.pid)

    def health(self) -> Dict:
        return json.load(urllib.request.urlopen(self.url + "/health", timeout=10))


@contextlib.contextmanager
def daemon(extra_args: Sequence[str] = (), persist: bool = True, code: Path = REPO) -> Iterator[Daemon]:
    """The daemon of checkout `code` as packaged: with a state file (in a temporary directory)
    unless not `persist`."""
    port = free_port()
    argv = [sys.executable, "-m", "progressistad", "--host", "127.0.0.1", "--port", str(port),
            "--max-tasks", "200000", "--log-level", "warning", *extra_args]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROGRESSISTA_")}
    env["PROGRESSISTA_CONFIG"] = ""
    with tempfile.TemporaryDirectory(prefix="progressistad-bench-") as state_dir:
        if persist:
            argv += ["--storage-path", os.path.join(state_dir, "state.json")]
        with process(argv, cwd=code, env=env) as proc:
            url = f"http://127.0.0.1:{port}"
            wait_http(url + "/health")
            yield Daemon(url, proc.pid)


FEATURES_OFF = ("--notify-config=", "--history-max-runs", "0")
"""Daemon options with notifications and the history off (telemetry is in the events sent)."""

RECEIVER = r'''
import json, sys, time
import tornado.ioloop, tornado.web
arrivals = {}
class Hook(tornado.web.RequestHandler):
    def post(self):
        now = time.monotonic()
        arrivals[json.loads(self.request.body)["tasks"][0]["task_id"]] = now
        self.set_status(204)
    def get(self):
        self.write(arrivals)
tornado.web.Application([(r"/hook", Hook)]).listen(int(sys.argv[1]), "127.0.0.1")
tornado.ioloop.IOLoop.current().start()
'''


def route_file(directory: str, text: str) -> str:
    path = Path(directory) / "notify.conf"
    path.write_text(text)
    return str(path)


def daemon_routes(directory: str, receiver_port: int, count: int) -> str:
    """`count` webhook routes to the receiver, every event kind, match *."""
    return route_file(directory, "".join(
        f"[r{i}]\nurl = http://127.0.0.1:{receiver_port}/hook\n"
        "events = close, error, stalled, resumed, overdue\ngroup-wait = 0\nrate-limit = 0\n"
        for i in range(count)))


@contextlib.contextmanager
def every_feature_on(directory: str, routes: int = 10) -> Iterator[List[str]]:
    """SPEC 16's "every feature on", as daemon options: the history on (its default) and
    `routes` webhook routes matching every task, to a receiver process; the events' telemetry
    is post.lua's SHAPE=telemetry."""
    port = free_port()
    with process([sys.executable, "-c", RECEIVER, str(port)]):
        wait_http(f"http://127.0.0.1:{port}/hook")
        yield ["--notify-config", daemon_routes(directory, port, routes)]


@contextlib.contextmanager
def dashboards(server: Daemon, how_many: int, timeout: float = 60.0,
               protocol: str = "delta") -> Iterator[None]:
    """`how_many` WebSocket readers of `protocol` ("delta", or "snapshot": the guide's) in one
    separate process."""
    if how_many == 0:
        yield
        return
    url = server.url.replace("http://", "ws://") + "/ws" + ("?protocol=delta" if protocol == "delta" else "")
    with process([sys.executable, str(HERE / "dashboards.py"), url, str(how_many)]):
        wait_for_dashboards(server, how_many, timeout)
        yield


def wait_for_dashboards(server: Daemon, how_many: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while server.health().get("dashboards", 0) < how_many:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {server.health().get('dashboards')} of {how_many} dashboards connected")
        time.sleep(0.1)


def bench_task(i: int) -> Dict:
    """The first event of task number `i`: a realistic bar (description, total, unit)."""
    return {"task_id": f"bench-{i}", "n": 0, "total": 1000000, "unit": "it",
            "desc": f"bench job {i} epoch 1/10", "status": "start"}


def post_json(url: str, payload) -> Dict:
    request = urllib.request.Request(url + "/progress", data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(request, timeout=60))


def populate(url: str, tasks: int, first: int = 0) -> None:
    for start in range(first, first + tasks, 1000):
        post_json(url, [bench_task(i) for i in range(start, min(first + tasks, start + 1000))])


def wrk(url: str, tasks: int, batch: int, seconds: float, connections: int,
        delay_ms: Optional[float] = None, shape: str = "plain", script: str = "post.lua",
        script_env: Optional[Dict[str, str]] = None) -> Dict:
    """Run wrk with a script of bench/ (post.lua unless told, its SHAPE `shape`); requests and
    events per second, errors, latency p50/p99."""
    env = dict(os.environ, TASKS=str(tasks), BATCH=str(batch), SHAPE=shape, **(script_env or {}))
    if delay_ms:
        env["DELAY_MS"] = str(delay_ms)
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(HERE / script), url + "/progress"],
        env=env, capture_output=True, text=True, timeout=seconds + 30, check=True,
    ).stdout
    match = re.search(r"BENCH requests=(\d+) errors=(\d+) non2xx=(\d+) seconds=([\d.]+) "
                      r"p50_ms=([\d.]+) p99_ms=([\d.]+)", out)
    if not match:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    requests, errors, non2xx, secs, p50, p99 = match.groups()
    rps = int(requests) / float(secs)
    return {"rps": rps, "events": rps * batch, "requests": int(requests), "errors": int(errors) + int(non2xx),
            "p50": float(p50), "p99": float(p99)}


def wrk_side_by_side(servers: Sequence["Daemon"], tasks: int, batch: int, seconds: int,
                     connections: int, shapes: Optional[Sequence[str]] = None) -> List[Dict]:
    """wrk against each server in alternating one-second rounds, `seconds` rounds each, so
    that load from elsewhere on a shared machine falls on both alike. Per server: events and
    requests per second over all rounds, errors, the median round's p50, the worst p99, and
    the server process's CPU time per event (`cpu_us`), which other work on the machine
    hardly changes. `shapes` (post.lua's SHAPE) per server: one server may appear twice, once
    per shape of event."""
    rounds: List[List[Dict]] = [[] for _ in servers]
    cpu = [0.0 for _ in servers]
    shapes = shapes or ["plain"] * len(servers)
    for _ in range(max(1, seconds)):
        for index, server in enumerate(servers):
            before = cpu_seconds(server.pid)
            rounds[index].append(wrk(server.url, tasks, batch, 1, connections, shape=shapes[index]))
            cpu[index] += cpu_seconds(server.pid) - before
    results = []
    for per_server, used in zip(rounds, cpu):
        rps = sum(r["rps"] for r in per_server) / len(per_server)
        events = sum(r["requests"] for r in per_server) * batch
        results.append({"rps": rps, "events": rps * batch, "errors": sum(r["errors"] for r in per_server),
                        "p50": sorted(r["p50"] for r in per_server)[len(per_server) // 2],
                        "p99": max(r["p99"] for r in per_server),
                        "cpu_us": used / events * 1e6 if events else float("nan")})
    return results


def metric_in(text: str, name: str) -> Optional[float]:
    """The value of an unlabelled sample `name` in a /metrics answer, or None."""
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(match.group(1)) if match else None


def metric(url: str, name: str) -> float:
    """The value of an unlabelled sample `name` on the daemon's /metrics."""
    value = metric_in(urllib.request.urlopen(url + "/metrics", timeout=30).read().decode(), name)
    if value is None:
        raise RuntimeError(f"{name} not on /metrics")
    return value


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time process `pid` has used so far, from /proc."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:
    """Resident set size of process `pid`, from /proc."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as a bench prints them beside its figures."""
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]
