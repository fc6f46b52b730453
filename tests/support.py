"""Helpers shared by the test layers: free ports, the real daemon as a subprocess, tools."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Dict, Iterator, Mapping, Optional, Sequence

import pytest

REPO = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI") == "true"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def require_tool(name: str) -> str:
    """The path of `name`; a missing tool skips the test, or fails it under CI=true."""
    path = shutil.which(name)
    if path:
        return path
    unavailable(f"{name} is not installed (make test installs it when run as root)")


def unavailable(message: str) -> None:
    """Skip the test for a missing prerequisite, or fail it under CI=true: a skip proves nothing."""
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@contextlib.contextmanager
def locked_by_another(path: Any) -> Iterator[None]:
    """Another connection's write lock on an SQLite database, held for the block."""
    import sqlite3

    other = sqlite3.connect(str(path), isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        other.execute("COMMIT")
        other.close()


def fill_disk(directory: Path) -> Path:
    """Take every free byte of the file system `directory` is on; returns the file holding them."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as stream:
        with contextlib.suppress(OSError):
            while stream.write(b"\0" * 4096):
                pass
    return filler


def clean_env(extra: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """The environment without any PROGRESSISTA_* or systemd variables, plus `extra`."""
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("PROGRESSISTA_", "NOTIFY_SOCKET", "LISTEN_", "WATCHDOG_",
                             "JOURNAL_STREAM", "CREDENTIALS_DIRECTORY"))
    }
    # An installed package's /etc/progressista/progressistad.conf and notify.conf must not leak
    # into tests.
    env["PROGRESSISTA_CONFIG"] = ""
    env["PROGRESSISTA_NOTIFY_CONFIG"] = ""
    env.update(extra or {})
    return env


class DaemonProcess:
    """The real daemon (`python -m progressistad`) on a free loopback port."""

    def __init__(
        self,
        args: Sequence[str] = (),
        env: Optional[Mapping[str, str]] = None,
        port: Optional[int] = None,
        command: Optional[Sequence[str]] = None,
        cwd: Optional[Path] = None,
    ) -> None:
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.args = list(args)
        self.env = clean_env(env)
        self.command = list(command or [sys.executable, "-m", "progressistad"])
        self.cwd = cwd
        self.log_file = tempfile.NamedTemporaryFile(prefix="progressistad-", suffix=".log", delete=False)
        self.proc: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def start(self, wait: bool = True, timeout: float = 20.0) -> "DaemonProcess":
        argv = self.command + ["--host", self.host, "--port", str(self.port)] + self.args
        self.proc = subprocess.Popen(argv, env=self.env, stdout=self.log_file, stderr=subprocess.STDOUT,
                                     cwd=self.cwd, stdin=subprocess.DEVNULL)
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"daemon exited with {self.proc.returncode}:\n{self.logs()}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=1) as response:
                    if response.status in (200, 503):
                        return
            except urllib.error.HTTPError:
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"daemon not answering after {timeout}s:\n{self.logs()}")

    def request(self, method: str, path: str, body: Any = None,
                headers: Optional[Mapping[str, str]] = None, timeout: float = 10.0):
        """(status, headers, parsed JSON or text) of one HTTP request to the daemon."""
        return http_request(method, self.url + path, body, headers, timeout)

    def send_signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"daemon did not stop within {timeout}s:\n{self.logs()}")
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def logs(self) -> str:
        return Path(self.log_file.name).read_text(errors="replace")

    def __enter__(self) -> "DaemonProcess":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.kill()
        try:
            os.unlink(self.log_file.name)
        except OSError:
            pass


def http_request(method: str, url: str, body: Any = None,
                 headers: Optional[Mapping[str, str]] = None, timeout: float = 10.0):
    """(status, headers, parsed JSON or text) of one HTTP request; a JSON body unless bytes."""
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, response.headers, decode_body(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.headers, decode_body(error.read())


def post(daemon: "DaemonProcess", events: Any, headers: Optional[Mapping[str, str]] = None) -> Any:
    """POST `events` to a daemon's /progress, assert it answered 200, return the answer."""
    status, _, body = daemon.request("POST", "/progress", events, headers=headers)
    assert status == 200, body
    return body


def decode_body(raw: bytes) -> Any:
    """An answer's body: parsed JSON, else its text."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


def read_to_end(sock: socket.socket) -> bytes:
    """Everything `sock` receives until the peer closes its side."""
    received = b""
    while True:
        data = sock.recv(65536)
        if not data:
            return received
        received += data


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05, message: str = "condition"):
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)



class NotifySocket:
    """A Unix datagram socket standing in for systemd's NOTIFY_SOCKET; collects sd_notify messages."""

    def __init__(self) -> None:
        self._directory = tempfile.mkdtemp(prefix="pn-")  # short: socket paths max 107 bytes
        self.path = os.path.join(self._directory, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages: list = []
        """(time.monotonic() at receipt, message text), in order of arrival."""

    def receive(self, timeout: float = 0.1) -> Optional[str]:
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return None
        text = data.decode("utf-8", "replace")
        self.messages.append((time.monotonic(), text))
        return text

    def wait_for(self, predicate, timeout: float = 20.0, what: str = "a message") -> str:
        """Receive until a message satisfies `predicate`; return it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = self.receive(min(0.2, max(0.01, deadline - time.monotonic())))
            if message is not None and predicate(message):
                return message
        raise AssertionError(f"no {what} within {timeout}s; got {[m for _, m in self.messages]}")

    def lifecycle(self) -> list:
        """Messages other than WATCHDOG=1 and STATUS= ones, in order."""
        return [m for _, m in self.messages
                if not m.startswith(("WATCHDOG=", "STATUS="))]

    def close(self) -> None:
        self.sock.close()
        shutil.rmtree(self._directory, ignore_errors=True)
