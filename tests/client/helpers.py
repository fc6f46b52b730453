"""Helpers for the client tests: client programs in subprocesses, task polling, a recording proxy."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from tests.support import REPO, clean_env, wait_for


def client_env(url: str, extra: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """The environment for a client program reporting to `url` quickly."""
    env = clean_env({"PROGRESSISTA_SERVER_URL": url, "PROGRESSISTA_PUSH_INTERVAL": "0.05",
                     "PYTHONPATH": str(REPO)})
    env.update(extra or {})
    return env


def run_program(code: str, url: str, extra_env: Optional[Mapping[str, str]] = None,
                timeout: float = 60.0, args: Sequence[str] = ()) -> subprocess.CompletedProcess:
    """Run a Python snippet as a client program; its completed process (stdout, stderr as text)."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args],
                          env=client_env(url, extra_env), capture_output=True, text=True,
                          timeout=timeout, cwd=str(REPO))


def start_program(code: str, url: str, extra_env: Optional[Mapping[str, str]] = None,
                  args: Sequence[str] = ()) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args],
                            env=client_env(url, extra_env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=str(REPO))


def progressista(args: Sequence[str], url: str, extra_env: Optional[Mapping[str, str]] = None,
                 timeout: float = 60.0, **kwargs: Any) -> subprocess.CompletedProcess:
    """Run the `progressista` command (as `python -m progressistad.client.cli`)."""
    if "stdout" not in kwargs and "stderr" not in kwargs:
        kwargs.setdefault("capture_output", True)
    return subprocess.run([sys.executable, "-m", "progressistad.client.cli", *args],
                          env=client_env(url, extra_env), timeout=timeout, cwd=str(REPO), **kwargs)


def tasks(daemon, headers: Optional[Mapping[str, str]] = None) -> Dict[str, Any]:
    status, _, body = daemon.request("GET", "/tasks", headers=headers)
    assert status == 200, body
    return body["tasks"]


def wait_task(daemon, task_id: str, timeout: float = 20.0, headers=None, **expected: Any) -> Dict[str, Any]:
    """Wait until `task_id` exists on the daemon with every `expected` field value."""
    def matches():
        try:
            task = tasks(daemon, headers).get(task_id)
        except OSError:
            return None
        if task and all(task.get(k) == v for k, v in expected.items()):
            return task
        return None
    return wait_for(matches, timeout, message=f"task {task_id} with {expected}")


class RecordingServer:
    """A stand-in daemon on 127.0.0.1 that records every POSTed body and answers `status`;
    with `daemon`, a proxy in front of that real daemon, which answers instead."""

    def __init__(self, status: int = 200, port: int = 0, daemon: Any = None) -> None:
        self.status = status
        self.daemon = daemon
        self.bodies: List[Any] = []
        self.connections = set()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                owner.bodies.append(json.loads(raw))
                owner.connections.add(self.client_address)
                if owner.daemon is not None:
                    status, body = owner.forward(raw, self.headers)
                else:
                    status = owner.status
                    body = json.dumps({"ok": True} if status == 200
                                      else {"error": "test refusal"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/progress"

    def forward(self, raw: bytes, headers: Any) -> Tuple[int, bytes]:
        """POST `raw` to the daemon as it came; the daemon's status and body."""
        passed = {name: headers[name] for name in ("Content-Type", "Authorization") if name in headers}
        request = urllib.request.Request(self.daemon.url + "/progress", data=raw, headers=passed,
                                         method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def events(self) -> List[dict]:
        out: List[dict] = []
        for body in list(self.bodies):
            out.extend(body if isinstance(body, list) else [body])
        return out

    def logs(self, task_id: str) -> List[str]:
        """Every log line received for `task_id`, in the order the daemon would append them."""
        lines: List[str] = []
        for event in self.events():
            if event.get("task_id") == task_id and "log" in event:
                log = event["log"]
                lines.extend(log.split("\n") if isinstance(log, str) else log)
        return lines

    def __enter__(self) -> "RecordingServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


def assert_acceptable(event: Mapping[str, Any]) -> None:
    """`event` keeps SPEC section 15's limits, which the daemon enforces with a 400."""
    metrics = event.get("metrics", {})
    assert isinstance(metrics, dict) and len(metrics) <= 16, event
    for key, value in metrics.items():
        assert isinstance(key, str) and 0 < len(key) <= 64, key
        assert value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)
                                 and math.isfinite(value)), (key, value)
    assert len(event.get("postfix", "")) <= 256, event
    log = event.get("log", [])
    assert isinstance(log, list) and len(log) <= 50, event
    for line in log:
        assert isinstance(line, str) and "\n" not in line and len(line.encode("utf-8")) <= 1024


def log_tail(daemon, task_id: str) -> List[str]:
    """The lines the daemon keeps in `task_id`'s log tail (GET /tasks/{id}/log)."""
    status, _, body = daemon.request("GET", f"/tasks/{task_id}/log")
    assert status == 200, body
    return body["lines"]


def rejected(daemon) -> float:
    """Events the daemon refused since it started, by its /metrics."""
    status, _, text = daemon.request("GET", "/metrics")
    assert status == 200, text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("progressista_events_rejected_total{"))


def wrapper(args: Sequence[str], url: str, extra_env: Optional[Mapping[str, str]] = None,
            timeout: float = 60.0, **kwargs: Any) -> subprocess.CompletedProcess:
    """`progressista run ARGS` with its output as bytes."""
    return progressista(["run", *args], url, extra_env, timeout, **kwargs)
