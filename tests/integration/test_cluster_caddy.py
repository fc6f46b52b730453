"""Debian's caddy, configured from packaging/caddy/Caddyfile.cluster, in front of two daemons."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import List, Optional

import pytest

pytest.importorskip("redis")

from tests.dashboard_client import Dashboard  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402
from tests.support import REPO, free_port, require_tool, wait_for  # noqa: E402

pytestmark = pytest.mark.integration

EXAMPLE = REPO / "packaging" / "caddy" / "Caddyfile.cluster"
EXAMPLE_UPSTREAMS = "192.0.2.11:8000 192.0.2.12:8000"


class ClusterCaddy:
    """caddy run on the example, plain HTTP on a free loopback port, with the given upstreams."""

    def __init__(self, tmp_path: Path, upstreams: List[str]) -> None:
        self.binary = require_tool("caddy")
        self.port = free_port()
        text = EXAMPLE.read_text()
        assert EXAMPLE_UPSTREAMS in text and "progress.lan {" in text and "\ttls internal\n" in text
        text = (text.replace("progress.lan {", f"http://127.0.0.1:{self.port} {{")
                .replace("\ttls internal\n", "")
                .replace(EXAMPLE_UPSTREAMS, " ".join(upstreams)))
        self.config = tmp_path / "Caddyfile"
        self.config.write_text("{\n\tadmin off\n}\n\n" + text)
        self.home = tmp_path
        self.log = tmp_path / "caddy.log"
        self.proc: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "ClusterCaddy":
        env = {"HOME": str(self.home), "XDG_DATA_HOME": str(self.home / "data"),
               "XDG_CONFIG_HOME": str(self.home / "config"), "PATH": "/usr/bin:/bin"}
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [self.binary, "run", "--config", str(self.config), "--adapter", "caddyfile"],
                stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env)
        wait_for(lambda: self.request("GET", "/health")[0] == 200, 30, 0.1,
                 message=f"caddy answering:\n{self.logs()}")
        return self

    def request(self, method: str, path: str, body=None):
        assert self.proc is not None and self.proc.poll() is None, self.logs()
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        try:
            with urllib.request.urlopen(req, timeout=15) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, error.read()
        except OSError as error:
            return 0, str(error)

    def logs(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def caddy_in_front(tmp_path):
    started = []

    def start(daemons):
        caddy = ClusterCaddy(tmp_path, [f"{d.host}:{d.port}" for d in daemons]).start()
        started.append(caddy)
        return caddy

    yield start
    for caddy in started:
        caddy.stop()


def accepted(daemon) -> float:
    """progressista_events_accepted_total as the daemon's /metrics reports it."""
    _, _, text = daemon.request("GET", "/metrics")
    line = next(l for l in text.splitlines() if l.startswith("progressista_events_accepted_total"))
    return float(line.split()[-1])


def test_caddy_spreads_over_both_and_keeps_answering_with_one_killed(
        daemon_factory, redis_server, redis_prefix, caddy_in_front):
    args = ["--redis-url", redis_server.url, "--redis-prefix", redis_prefix,
            "--broadcast-interval", "0.05"]
    a, b = daemon_factory(args), daemon_factory(args)
    caddy = caddy_in_front([a, b])
    for i in range(10):
        assert caddy.request("POST", "/progress", {"task_id": f"t{i}", "n": i})[0] == 200
    assert accepted(a) > 0 and accepted(b) > 0, "round robin reached both daemons"
    dashboard = Dashboard(caddy.url.replace("http", "ws", 1) + "/ws?protocol=delta")
    try:
        dashboard.wait_until(lambda s: len(s) == 10, what="snapshot through caddy")
        a.kill()
        answers = [caddy.request("POST", "/progress", {"task_id": "after", "n": i})[0]
                   for i in range(20)]
        assert answers == [200] * 20, caddy.logs()
        status, body = caddy.request("GET", "/tasks")
        assert status == 200 and len(body["tasks"]) == 11
    finally:
        dashboard.close()


def test_caddy_routes_around_a_degraded_daemon(daemon_factory, redis_server, redis_prefix,
                                              caddy_in_front):
    healthy = daemon_factory(["--redis-url", redis_server.url, "--redis-prefix", redis_prefix])
    lonely_redis = RedisServer().start()
    try:
        degraded = daemon_factory(["--redis-url", lonely_redis.url])
        caddy = caddy_in_front([healthy, degraded])
        lonely_redis.stop()
        wait_for(lambda: degraded.request("GET", "/health")[0] == 503, 20, message="degraded")
        # Caddy's next active health check (every 2 s) takes it out of rotation.
        wait_for(lambda: all(caddy.request("GET", "/health")[0] == 200 for _ in range(4)),
                 timeout=20, interval=0.5, message="caddy routing only to the healthy daemon")
        answers = [caddy.request("POST", "/progress", {"task_id": f"r{i}"})[0] for i in range(10)]
        assert answers == [200] * 10, caddy.logs()
    finally:
        lonely_redis.stop()
