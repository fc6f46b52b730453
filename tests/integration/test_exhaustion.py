"""Resource exhaustion against the real daemon: the task limit, huge bodies, many idle or
slow WebSockets, half-open peers, and connections that send nothing."""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import os
import resource
import socket
import time
import urllib.error
import urllib.request

import pytest
import tornado.httpclient
import tornado.websocket

from tests.support import post, read_to_end, wait_for

pytestmark = pytest.mark.integration

MIB = 1024 * 1024


def memory_kib(pid: int, field: str = "VmRSS") -> int:
    """A memory figure of process `pid` from /proc (VmRSS now, VmHWM its peak), in KiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


@pytest.fixture
def many_files():
    """Raise this process's open-files limit (daemons started later inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, 8192) if hard != resource.RLIM_INFINITY else 8192
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < 2500:
        pytest.skip("cannot raise the open-files limit to 2500")
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def raw_websocket(port: int, path: str = "/ws") -> socket.socket:
    """A peer that completes the WebSocket handshake, then never reads nor answers a ping."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        assert chunk, "closed during the handshake"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    return sock


def dashboards(daemon) -> int:
    return daemon.request("GET", "/health")[2]["dashboards"]


# ---- the task limit


def test_ten_thousand_task_ids_from_one_client_meet_max_tasks_cleanly(daemon_factory):
    daemon = daemon_factory(["--max-tasks", "10000", "--log-level", "warning"])
    for start in range(0, 10000, 1000):
        batch = [{"task_id": f"id-{i}", "n": i} for i in range(start, start + 1000)]
        status, _, reply = daemon.request("POST", "/progress", batch)
        assert status == 200 and reply["accepted"] == 1000, reply
    status, headers, reply = daemon.request("POST", "/progress", {"task_id": "one-too-many"})
    assert status == 503 and int(headers["Retry-After"]) >= 1
    assert "task limit" in reply["error"] and reply["max_tasks"] == 10000
    status, _, _ = daemon.request("POST", "/progress",
                                  [{"task_id": "id-1", "n": 5}, {"task_id": "new-a"}])
    assert status == 503, "a batch that does not fit must apply none of its events"
    post(daemon, {"task_id": "id-7", "n": 70})
    tasks = daemon.request("GET", "/tasks")[2]["tasks"]
    assert len(tasks) == 10000 and tasks["id-1"]["n"] == 1 and tasks["id-7"]["n"] == 70
    assert all(f"id-{i}" in tasks for i in range(10000)), "a task was lost at the limit"
    post(daemon, {"task_id": "id-3", "status": "close"})
    post(daemon, {"task_id": "after-eviction"})
    tasks = daemon.request("GET", "/tasks")[2]["tasks"]
    assert "id-3" not in tasks and "after-eviction" in tasks and len(tasks) == 10000
    status, _, health = daemon.request("GET", "/health")
    assert status == 200 and health["tasks"] == 10000


# ---- huge bodies


def _send_body(port: int, head: bytes, chunk: bytes, total: int) -> bytes:
    """Send `head` then up to `total` bytes of `chunk`s until the daemon answers; its answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head)
        sent = 0
        try:
            while sent < total:
                sock.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        sock.settimeout(10)
        reply = b""
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                reply += data
        except (ConnectionResetError, socket.timeout):
            pass
        return reply


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_100_mb_body_is_refused_before_it_is_read(daemon_factory, framing):
    daemon = daemon_factory(["--log-level", "warning"])
    daemon.request("POST", "/progress", {"task_id": "keep", "n": 1})
    pid = daemon.proc.pid
    peak_before = memory_kib(pid, "VmHWM")
    total = 100 * MIB
    piece = b"[" + b'{"task_id":"x","desc":"' + b"y" * 1000 + b'"},' * 1
    chunk = (piece * 64)[:65536]
    if framing == "content-length":
        head = (f"POST /progress HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Content-Length: {total}\r\n\r\n").encode()
        payload = chunk
    else:
        head = (b"POST /progress HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n")
        payload = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
    reply = _send_body(daemon.port, head, payload, total)
    status_line = reply.split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 413") or \
        (framing == "chunked" and status_line.startswith(b"HTTP/1.1 400")), reply[:300]
    if status_line.startswith(b"HTTP/1.1 413"):
        assert b'"error"' in reply and b"max-body-bytes" in reply
    peak_after = memory_kib(pid, "VmHWM")
    print(f"100 MB body ({framing}): {status_line.decode()}; peak RSS {peak_before} -> {peak_after} KiB")
    assert peak_after - peak_before < 20 * 1024, \
        f"peak RSS grew {peak_after - peak_before} KiB while refusing a 100 MB body"
    assert daemon.request("GET", "/tasks/keep")[2]["n"] == 1
    assert "Traceback" not in daemon.logs()


def _urllib_post(port: int, body: bytes):
    request = urllib.request.Request(f"http://127.0.0.1:{port}/progress", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as reply:
            return reply.status, reply.headers, reply.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def _http_client_post(port: int, body: bytes):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("POST", "/progress", body=body,
                           headers={"Content-Type": "application/json"})
        reply = connection.getresponse()
        return reply.status, reply.headers, reply.read()
    finally:
        connection.close()


def _raw_post(port: int, body: bytes):
    """Send the whole body before reading a byte, then read the answer to the end."""
    head = (f"POST /progress HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(head + body)
        reply = read_to_end(sock)
    head, _, content = reply.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers = dict(line.decode().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, content


@pytest.mark.parametrize("megabytes", [5, 50])
@pytest.mark.parametrize("client", [_urllib_post, _http_client_post, _raw_post],
                         ids=["urllib", "http.client", "raw-socket"])
def test_a_client_that_sends_its_whole_far_too_large_body_reads_the_413(daemon, client, megabytes):
    body = b"[" + b'{"task_id": "x"},' * (megabytes * MIB // 17)
    started = time.monotonic()
    status, headers, content = client(daemon.port, body)
    elapsed = time.monotonic() - started
    print(f"{megabytes} MB body by {client.__name__}: {status} in {elapsed:.2f} s")
    assert status == 413, content[:200]
    assert headers["Connection"] == "close"
    assert json.loads(content) == {"error": "request body larger than --max-body-bytes=1048576",
                                   "limit": 1048576}
    assert daemon.request("GET", "/health")[0] == 200
    assert "Traceback" not in daemon.logs()


# ---- many WebSockets


async def _fast_dashboard_sees(daemon, marker: int, timeout: float = 30.0) -> None:
    conn = await tornado.websocket.websocket_connect(f"{daemon.ws_url}/ws?protocol=delta")
    try:
        await conn.read_message()
        client = tornado.httpclient.AsyncHTTPClient()
        await client.fetch(daemon.url + "/progress", method="POST",
                           body=json.dumps({"task_id": "probe", "n": marker}))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = await asyncio.wait_for(conn.read_message(), deadline - time.monotonic())
            assert message is not None, "the fast dashboard was closed"
            task = json.loads(message).get("tasks", {}).get("probe")
            if task and task["n"] == marker:
                return
        raise AssertionError("the fast dashboard never saw the update")
    finally:
        conn.close()


def test_a_thousand_idle_and_slow_dashboards_stay_bounded_and_do_not_delay_others(
        daemon_factory, many_files):
    daemon = daemon_factory(["--log-level", "warning", "--ws-stall-timeout", "600",
                             "--ws-ping-interval", "600", "--broadcast-interval", "0.05"])
    pid = daemon.proc.pid
    desc = "d" * 200
    daemon.request("POST", "/progress", [{"task_id": f"t{i}", "desc": desc} for i in range(100)])
    baseline = memory_kib(pid)
    peers = [raw_websocket(daemon.port) for _ in range(1000)]
    try:
        wait_for(lambda: dashboards(daemon) == 1000, timeout=60, message="1000 dashboards")
        connected = memory_kib(pid)
        samples = []
        for round_number in range(18):
            for step in range(5):
                batch = [{"task_id": f"t{i}", "n": round_number * 10 + step} for i in range(100)]
                post(daemon, batch)
                time.sleep(0.06)
            samples.append(memory_kib(pid))
        asyncio.run(_fast_dashboard_sees(daemon, marker=424242))
        per_connection = (connected - baseline) / 1000
        print(f"1000 idle WebSockets: RSS {baseline} -> {connected} KiB ({per_connection:.1f} KiB "
              f"each); under load, samples {samples} KiB")
        assert per_connection < 64, f"{per_connection:.1f} KiB per idle WebSocket"
        # Each stalled peer holds at most one unsent message (plus what its kernel buffers
        # took): memory climbs while their buffers fill, then stays flat however long it goes.
        snapshot_kib = len(json.dumps(daemon.request("GET", "/tasks")[2])) / 1024
        assert samples[-1] - connected < 1000 * 2 * snapshot_kib + 32 * 1024, samples
        assert samples[-1] - samples[-6] < 4 * 1024, f"RSS still growing: {samples} KiB"
        assert dashboards(daemon) == 1000, "an idle dashboard was dropped although not stalled"
    finally:
        for peer in peers:
            peer.close()
    wait_for(lambda: dashboards(daemon) == 0, timeout=60, message="closed dashboards to go")
    assert "Traceback" not in daemon.logs()


def test_a_dashboard_that_stops_reading_is_closed_after_the_stall_timeout(daemon_factory):
    daemon = daemon_factory(["--log-level", "warning", "--ws-stall-timeout", "1",
                             "--cleanup-interval", "0.5", "--ws-ping-interval", "600"])
    daemon.request("POST", "/progress", [{"task_id": f"t{i}", "desc": "x" * 1000} for i in range(200)])
    slow = raw_websocket(daemon.port)
    try:
        deadline = time.monotonic() + 60
        while dashboards(daemon) > 0 and time.monotonic() < deadline:
            daemon.request("POST", "/progress", [{"task_id": f"t{i}", "n": time.time()} for i in range(200)])
            time.sleep(0.1)
        assert dashboards(daemon) == 0, "a dashboard that never reads was not closed"
        asyncio.run(_fast_dashboard_sees(daemon, marker=7))
    finally:
        slow.close()


def test_half_open_dashboards_are_reaped_by_pings(daemon_factory):
    daemon = daemon_factory(["--log-level", "warning", "--ws-ping-interval", "0.5",
                             "--ws-stall-timeout", "600"])

    async def scenario():
        alive = await tornado.websocket.websocket_connect(f"{daemon.ws_url}/ws")
        await alive.read_message()
        peers = [raw_websocket(daemon.port) for _ in range(20)]
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if dashboards(daemon) == 1:
                    break
                await asyncio.sleep(0.2)
            assert dashboards(daemon) == 1, "peers that never answer pings were not closed"
            await asyncio.sleep(2)
            assert dashboards(daemon) == 1, "the dashboard that answers pings was closed"
        finally:
            for peer in peers:
                peer.close()
            alive.close()

    asyncio.run(scenario())
    assert "websocket_ping_timeout" not in daemon.logs(), "tornado refused the ping timeout"


# ---- connections that send nothing

SHORT_TIMEOUTS = ["--idle-connection-timeout", "1", "--body-timeout", "1"]
"""The HTTP idle and body timeouts (75 s and 30 s) cut down for the test."""


def _closed_by_peer(sock: socket.socket, timeout: float) -> bool:
    sock.settimeout(timeout)
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                return True
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True


@pytest.mark.parametrize("opening", [
    b"",
    b"POST /progress HTTP/1.1\r\nHost: x\r\n",
    b"POST /progress HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"task_id\"",
], ids=["silent", "headers-never-end", "body-never-ends"])
def test_connections_that_send_nothing_more_are_timed_out(daemon_factory, opening):
    daemon = daemon_factory(["--log-level", "warning", *SHORT_TIMEOUTS])
    sockets = []
    try:
        for _ in range(50):
            sock = socket.create_connection(("127.0.0.1", daemon.port), timeout=10)
            sock.sendall(opening)
            sockets.append(sock)
        assert daemon.request("GET", "/health")[0] == 200
        for sock in sockets:
            assert _closed_by_peer(sock, timeout=30), "the daemon kept an idle connection open"
        fds = len(os.listdir(f"/proc/{daemon.proc.pid}/fd"))
        assert fds < 40, f"{fds} descriptors open after the idle connections were closed"
    finally:
        for sock in sockets:
            sock.close()
