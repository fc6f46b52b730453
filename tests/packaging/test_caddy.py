"""Debian's caddy in front of the real daemon, configured from packaging/caddy's examples."""

from __future__ import annotations

import http.client
import json
import re
import ssl
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple
from urllib.parse import urljoin, urlsplit

import pytest

from tests.packaging.helpers import ws_handshake_status, ws_messages
from tests.support import REPO, DaemonProcess, free_port, require_tool, wait_for

pytestmark = [pytest.mark.packaging, pytest.mark.integration]

EXAMPLES = REPO / "packaging" / "caddy"
EXAMPLE_UPSTREAM = "127.0.0.1:8000"
CLIENT_ADDRESS = "127.0.0.2"
"""The test client's source address: not the proxy's 127.0.0.1, so the daemon's log tells them apart."""
SPOOFED = {"X-Real-Ip": "203.0.113.7", "X-Forwarded-For": "198.51.100.9"}


def caddyfile_from(example: Path, site: str, upstream: str, https_port: int, storage: Path,
                   drop: Tuple[str, ...] = ()) -> str:
    """The example with this test's site address and upstream, behind test-only global options."""
    text = example.read_text()
    site_name = re.search(r"^(\S+) \{$", text, re.MULTILINE).group(1)
    assert EXAMPLE_UPSTREAM in text, f"{example.name} no longer proxies to {EXAMPLE_UPSTREAM}"
    text = text.replace(site_name + " {", site + " {").replace(EXAMPLE_UPSTREAM, upstream)
    for line in drop:
        assert line in text
        text = text.replace(line, "")
    http_port = free_port()
    global_options = (
        "{\n\tadmin off\n\tskip_install_trust\n"
        f"\thttp_port {http_port}\n\thttps_port {https_port}\n"
        f"\tstorage file_system {storage}\n}}\n\n"
    )
    return global_options + text


class Caddy:
    """caddy run on a generated Caddyfile, HTTPS on a free loopback port."""

    def __init__(self, tmp_path: Path, example: Path, upstream: str, drop: Tuple[str, ...] = ()) -> None:
        self.binary = require_tool("caddy")
        self.port = free_port()
        self.site = f"127.0.0.1:{self.port}"
        self.storage = tmp_path / "caddy-data"
        self.config = tmp_path / "Caddyfile"
        self.config.write_text(caddyfile_from(example, self.site, upstream, self.port, self.storage, drop))
        self.log = tmp_path / "caddy.log"
        self.proc: Optional[subprocess.Popen] = None

    @property
    def root_cert(self) -> str:
        return str(self.storage / "pki" / "authorities" / "local" / "root.crt")

    def start(self) -> "Caddy":
        env = {"HOME": str(self.storage.parent), "XDG_DATA_HOME": str(self.storage.parent / "xdg-data"),
               "XDG_CONFIG_HOME": str(self.storage.parent / "xdg-config"), "PATH": "/usr/bin:/bin"}
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([self.binary, "run", "--config", str(self.config),
                                          "--adapter", "caddyfile"], stdout=log, stderr=log,
                                         stdin=subprocess.DEVNULL, env=env)
        wait_for(self._answers, 30, 0.1, message=f"caddy on {self.site}:\n{self.logs()}")
        return self

    def _answers(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, self.logs()
        if not Path(self.root_cert).exists():
            return False
        try:
            self.request("GET", "/")
            return True
        except OSError:
            return False

    def request(self, method: str, path: str, body: Optional[dict] = None,
                headers: Optional[Mapping[str, str]] = None) -> Tuple[int, Dict[str, str], str]:
        """One HTTPS request from CLIENT_ADDRESS, checking Caddy's certificate against its root."""
        context = ssl.create_default_context(cafile=self.root_cert)
        connection = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=15, context=context,
                                                 source_address=(CLIENT_ADDRESS, 0))
        try:
            data = json.dumps(body).encode() if body is not None else None
            connection.request(method, path, body=data, headers=dict(headers or {}))
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read().decode("utf-8", "replace")
        finally:
            connection.close()

    def logs(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def front(tmp_path, daemon_factory):
    """start(example, daemon_args, drop=()) -> (caddy, daemon); everything stopped at teardown."""
    started: List[Caddy] = []

    def start(example: Path, daemon_args: List[str], drop: Tuple[str, ...] = ()):
        daemon = daemon_factory(["--trust-proxy", "--log-level", "debug"] + daemon_args)
        caddy = Caddy(tmp_path, example, f"127.0.0.1:{daemon.port}", drop)
        started.append(caddy)
        return caddy.start(), daemon

    yield start
    for caddy in started:
        caddy.stop()


class LocalLinks(HTMLParser):
    """src and href attributes of a page that point at the same site."""

    def __init__(self) -> None:
        super().__init__()
        self.links: List[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("src", "href") and value and not urlsplit(value).scheme and not value.startswith("#"):
                self.links.append(value)


def access_lines(daemon: DaemonProcess, method: str, path: str) -> List[str]:
    return [line for line in daemon.logs().splitlines() if f" {method} {path} " in line]


def test_caddyfile_proxies_api_websocket_and_dashboard(front):
    caddy, daemon = front(EXAMPLES / "Caddyfile", [])
    status, _, body = caddy.request("POST", "/progress", {"task_id": "caddy", "n": 1, "total": 2})
    assert status == 200 and json.loads(body)["accepted"] == 1
    (message,) = ws_messages(f"wss://{caddy.site}/ws", origin=f"https://{caddy.site}",
                             ca_certs=caddy.root_cert)
    assert message["tasks"]["caddy"]["total"] == 2
    status, _, page = caddy.request("GET", "/static/index.html")
    assert status == 200 and "<html" in page


def test_spoofed_client_address_headers_do_not_reach_the_log(front):
    caddy, daemon = front(EXAMPLES / "Caddyfile", [])
    status, _, _ = caddy.request("POST", "/progress", {"task_id": "spoof"}, headers=SPOOFED)
    assert status == 200
    lines = wait_for(lambda: access_lines(daemon, "POST", "/progress"), message="the access line")
    assert f"({CLIENT_ADDRESS})" in lines[0], lines
    for spoofed in SPOOFED.values():
        assert spoofed not in daemon.logs()


def test_without_dropping_x_real_ip_a_client_chooses_its_logged_address(front):
    """Why the example has `header_up -X-Real-Ip`: without it the spoof works."""
    caddy, daemon = front(EXAMPLES / "Caddyfile", [], drop=("header_up -X-Real-Ip",))
    assert caddy.request("POST", "/progress", {"task_id": "spoof"}, headers=SPOOFED)[0] == 200
    lines = wait_for(lambda: access_lines(daemon, "POST", "/progress"), message="the access line")
    assert f"({SPOOFED['X-Real-Ip']})" in lines[0], lines


def test_foreign_origin_websocket_is_refused_through_caddy(front):
    caddy, _ = front(EXAMPLES / "Caddyfile", [])
    assert ws_handshake_status(f"wss://{caddy.site}/ws", "https://evil.example",
                               ca_certs=caddy.root_cert) == 403
    # With --trust-proxy the daemon compares the Origin with X-Forwarded-Host, which
    # Caddy sets itself whatever the client sent.
    assert ws_handshake_status(f"wss://{caddy.site}/ws", "https://evil.example", ca_certs=caddy.root_cert,
                               headers={"X-Forwarded-Host": "evil.example"}) == 403
    assert ws_handshake_status(f"wss://{caddy.site}/ws", f"https://{caddy.site}",
                               ca_certs=caddy.root_cert) == 101


def test_path_prefix_example_serves_everything_under_the_base_path(front):
    prefix = "/progress-dash"
    caddy, daemon = front(EXAMPLES / "Caddyfile.path-prefix", ["--base-path", prefix])
    status, _, body = caddy.request("POST", prefix + "/progress", {"task_id": "prefixed", "n": 5})
    assert status == 200 and json.loads(body)["accepted"] == 1
    (message,) = ws_messages(f"wss://{caddy.site}{prefix}/ws?protocol=delta",
                             origin=f"https://{caddy.site}", ca_certs=caddy.root_cert)
    assert message["type"] == "snapshot" and message["tasks"]["prefixed"]["n"] == 5
    assert caddy.request("GET", prefix)[1]["Location"] == prefix + "/"
    status, headers, _ = caddy.request("GET", prefix + "/")
    assert status in (301, 302) and headers["Location"] == prefix + "/static/index.html"
    status, _, page = caddy.request("GET", prefix + "/static/index.html")
    assert status == 200 and "<html" in page
    links = LocalLinks()
    links.feed(page)
    for link in links.links:
        target = urlsplit(urljoin(prefix + "/static/index.html", link)).path
        assert target.startswith(prefix + "/"), f"{link} escapes {prefix}"
        assert caddy.request("GET", target)[0] == 200, target
    assert caddy.request("GET", "/progress")[0] == 404, "only the prefix reaches the daemon"
    assert ws_handshake_status(f"wss://{caddy.site}{prefix}/ws", "https://evil.example",
                               ca_certs=caddy.root_cert) == 403
