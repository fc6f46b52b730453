"""A real redis-server (Debian's) for the tests: a free loopback port, no persistence."""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Optional

from tests.support import free_port, require_tool


class RedisServer:
    """One redis-server on 127.0.0.1; `stop()` then `start()` restarts it empty on the same port."""

    def __init__(self, port: Optional[int] = None) -> None:
        self.binary = require_tool("redis-server")
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="progressista-redis-")
        self.proc: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15.0) -> "RedisServer":
        argv = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", self.dir, "--daemonize", "no",
                "--logfile", str(Path(self.dir) / "redis.log"), "--protected-mode", "yes"]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"redis-server exited with {self.proc.returncode}: {self.log()}")
            if self.ping():
                return self
            time.sleep(0.05)
        raise AssertionError(f"redis-server not answering after {timeout}s: {self.log()}")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def log(self) -> str:
        try:
            return (Path(self.dir) / "redis.log").read_text(errors="replace")[-2000:]
        except OSError:
            return ""
