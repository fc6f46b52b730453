"""Out of descriptors, against the real daemon under a lowered open-files limit (soft and hard,
so that the daemon cannot raise it): connections over the limit are refused with a clear 503
or wait in the backlog, the CPU stays idle, the log stays small, and service resumes."""

from __future__ import annotations

import os
import select
import socket
import sys
import time
import urllib.error
import urllib.request
from typing import List

import pytest

from tests.support import wait_for

pytestmark = pytest.mark.integration

OPEN_FILES = 256
CLIENTS = 326
DERIVED_LIMIT = OPEN_FILES - 64
"""What --max-connections 0 derives from OPEN_FILES (tests/unit/test_daemon_start.py)."""
LIMITED = ("import resource, sys; resource.setrlimit(resource.RLIMIT_NOFILE, ({n}, {n})); "
           "from progressistad.daemon.main import main; sys.exit(main())")
"""The daemon with its soft and hard open-files limits both lowered to {n}."""
MEASURE_SECONDS = 3.0


def limited_daemon(daemon_factory, args=()):
    return daemon_factory(["--log-level", "info", *args],
                          command=[sys.executable, "-c", LIMITED.format(n=OPEN_FILES)])


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time process `pid` has used, from /proc."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_share(pid: int, seconds: float = MEASURE_SECONDS) -> float:
    """The share of `seconds` of wall time that process `pid` spent on the CPU."""
    before, started = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return (cpu_seconds(pid) - before) / (time.monotonic() - started)


def connect_all(port: int, count: int) -> List[socket.socket]:
    """`count` connections that send nothing (each holds one of the daemon's descriptors)."""
    return [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(count)]


def answered(sockets: List[socket.socket], seconds: float) -> dict:
    """socket -> everything it received up to EOF, for the sockets that got an answer."""
    answers: dict = {}
    deadline = time.monotonic() + seconds
    waiting = list(sockets)
    while waiting and time.monotonic() < deadline:
        readable, _, _ = select.select(waiting, [], [], max(0.0, deadline - time.monotonic()))
        for sock in readable:
            data = sock.recv(65536)
            answers[sock] = answers.get(sock, b"") + data
            if not data:
                waiting.remove(sock)
    return answers


def health(port: int, timeout: float = 10) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=timeout) as reply:
            return reply.status
    except urllib.error.HTTPError as error:
        return error.code


def metric(daemon, name: str) -> float:
    text = daemon.request("GET", "/metrics")[2]
    return float(next(line.split()[-1] for line in text.splitlines() if line.startswith(name + " ")))


def test_over_the_derived_limit_connections_get_a_503_and_the_daemon_stays_idle(daemon_factory):
    daemon = limited_daemon(daemon_factory)
    log_before = os.path.getsize(daemon.log_file.name)
    clients = connect_all(daemon.port, CLIENTS)
    try:
        answers = answered(clients, seconds=5)
        refused = [sock for sock, data in answers.items() if data.startswith(b"HTTP/1.1 503 ")]
        assert len(refused) == CLIENTS - DERIVED_LIMIT == len(answers), \
            f"{len(answers)} answered, {len(refused)} with a 503"
        head = answers[refused[0]].split(b"\r\n\r\n")[0].split(b"\r\n")
        assert b"Retry-After: 1" in head and b"Connection: close" in head
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(daemon.url + "/health", timeout=10)
        assert error.value.code == 503 and error.value.headers["Retry-After"] == "1"
        assert b"too many connections" in error.value.read()
        share = cpu_share(daemon.proc.pid)
        log_bytes = os.path.getsize(daemon.log_file.name) - log_before
        print(f"{CLIENTS} clients, open files {OPEN_FILES}: {len(refused)} refused with 503, "
              f"CPU {share:.1%} of wall time, log +{log_bytes} bytes")
        assert share < 0.3, f"the daemon used {share:.0%} of a CPU while at its connection limit"
        assert log_bytes < 2000, daemon.logs()[-3000:]
    finally:
        for sock in clients:
            sock.close()
    assert wait_for(lambda: health(daemon.port) == 200, timeout=10, message="service back")
    assert metric(daemon, "progressista_connections_refused_total") >= CLIENTS - DERIVED_LIMIT + 1
    assert metric(daemon, "progressista_connections_max") == DERIVED_LIMIT
    assert "Traceback" not in daemon.logs()


def test_out_of_descriptors_accepting_pauses_instead_of_spinning(daemon_factory):
    # A limit above what the descriptors allow: accept() itself fails with EMFILE.
    daemon = limited_daemon(daemon_factory, ["--max-connections", "1000"])
    log_before = os.path.getsize(daemon.log_file.name)
    clients = connect_all(daemon.port, CLIENTS)
    try:
        wait_for(lambda: "cannot accept connections" in daemon.logs(), timeout=10,
                 message="the daemon to run out of descriptors")
        share = cpu_share(daemon.proc.pid)
        log_bytes = os.path.getsize(daemon.log_file.name) - log_before
        lines = [line for line in daemon.logs().splitlines() if "cannot accept" in line]
        print(f"{CLIENTS} clients, open files {OPEN_FILES}, --max-connections 1000: CPU "
              f"{share:.1%} of wall time, log +{log_bytes} bytes, {len(lines)} lines about it")
        assert share < 0.3, f"the daemon used {share:.0%} of a CPU while out of descriptors"
        assert log_bytes < 2000 and len(lines) <= 2, daemon.logs()[-3000:]
        # Those still in the backlog are served once others leave.
        leaving, staying = clients[:150], clients[150:]
        for sock in leaving:
            sock.close()
        for sock in staying:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answers = answered(staying, seconds=15)
        ok = [sock for sock, data in answers.items() if data.startswith(b"HTTP/1.1 200 ")]
        assert len(ok) == len(staying), f"{len(ok)} of {len(staying)} waiting clients served"
    finally:
        for sock in clients:
            sock.close()
    assert wait_for(lambda: health(daemon.port) == 200, timeout=10, message="service back")
    assert metric(daemon, "progressista_accept_pauses_total") >= 1
    assert "Traceback" not in daemon.logs()
