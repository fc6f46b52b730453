"""Malformed bodies, query strings, paths and headers against every route of the real daemon:
never a 5xx, always a JSON error, no task lost, and the daemon keeps answering."""

import http.client
import json
import random
import urllib.parse

import pytest

from tests.support import read_to_end

pytestmark = pytest.mark.integration

ROUTES = [
    ("POST", "/progress"), ("GET", "/tasks"), ("DELETE", "/tasks"), ("GET", "/tasks/keep"),
    ("DELETE", "/tasks/{junk}"), ("GET", "/tasks/{junk}"), ("GET", "/health"), ("GET", "/metrics"),
    ("GET", "/"), ("GET", "/static/{junk}"), ("GET", "/ws"), ("OPTIONS", "/progress"),
    ("PUT", "/progress"), ("PATCH", "/tasks"), ("GET", "/{junk}"),
]
SCALARS = [None, True, False, 0, -1, 1e308, -1e308, 10**30, 3.5, "", "x" * 300, "\u0000", "\ud800",
           "é", [], {}, "NaN"]
FIELDS = ["task_id", "desc", "total", "n", "unit", "status", "timestamp", "meta"]


def junk_text(rng, limit=40):
    alphabet = "abc/%?&=#;:\\\"'<>{}[] \t\u00e9\u2603" + "".join(map(chr, range(0, 32)))
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, limit)))


def junk_event(rng):
    event = {}
    for name in rng.sample(FIELDS, rng.randint(0, len(FIELDS))):
        event[name] = rng.choice(SCALARS + [junk_text(rng)])
    if rng.random() < 0.3:
        event["task_id"] = "fuzz-" + str(rng.randint(0, 5))
    if rng.random() < 0.2:
        event[junk_text(rng, 10)] = rng.choice(SCALARS)
    return event


def junk_body(rng):
    kind = rng.randint(0, 7)
    if kind == 0:
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 200)))
    if kind == 1:
        depth = rng.randint(1, 5000)
        return b"[" * depth + b"]" * rng.randint(0, depth)
    if kind == 2:
        return json.dumps([junk_event(rng) for _ in range(rng.randint(0, 20))]).encode()
    if kind == 3:
        return json.dumps(junk_event(rng)).encode()
    if kind == 4:
        return json.dumps(rng.choice(SCALARS)).encode("utf-8", "surrogatepass")
    if kind == 5:
        return b'{"task_id": "a", "n": ' + b"9" * rng.randint(1, 6000) + b"}"
    if kind == 6:
        return json.dumps(junk_event(rng)).encode()[: rng.randint(0, 30)]
    return junk_text(rng).encode("utf-8", "surrogatepass")


def junk_query(rng):
    params = []
    for _ in range(rng.randint(0, 4)):
        name = rng.choice(["status", "older_than", "token", "protocol", junk_text(rng, 8)])
        value = rng.choice(["close", "stale,error", "-1", "1e309", "nan", "", junk_text(rng, 20)])
        params.append(f"{urllib.parse.quote(name, safe='')}={urllib.parse.quote(value, safe='%')}")
    return "&".join(params)


def junk_headers(rng):
    headers = {}
    if rng.random() < 0.3:
        headers["Authorization"] = rng.choice(["Bearer", "Bearer \u00e9", "Basic x", junk_text(rng, 20)])
    if rng.random() < 0.2:
        headers["Origin"] = rng.choice(["null", "http://evil.example", junk_text(rng, 20)])
    if rng.random() < 0.2:
        headers["Cookie"] = "progressista_token=" + junk_text(rng, 20).replace(";", "")
    return {name: _header_safe(value) for name, value in headers.items()}


def _header_safe(value):
    """Keep header values valid HTTP: the HTTP parser, not the application, rejects the rest."""
    return "".join(ch for ch in value.encode("latin-1", "replace").decode("latin-1")
                   if ch == "\t" or ord(ch) >= 0x20 and ord(ch) != 0x7F)


def send(port, method, path, body, headers):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type") or "", response.read()
    finally:
        conn.close()


def test_fuzzed_requests_never_break_the_daemon(daemon_factory):
    daemon = daemon_factory(["--max-body-bytes", "65536"])
    status, _, _ = daemon.request("POST", "/progress", {"task_id": "keep", "n": 7, "total": 9})
    assert status == 200
    rng = random.Random(20261129)
    statuses = set()
    for case in range(400):
        method, template = rng.choice(ROUTES)
        path = template.replace("{junk}", urllib.parse.quote(junk_text(rng, 30), safe="/%"))
        query = junk_query(rng)
        if query:
            path += "?" + query
        body = junk_body(rng) if method in ("POST", "PUT", "PATCH", "DELETE") else b""
        try:
            status, content_type, raw = send(daemon.port, method, path, body, junk_headers(rng))
        except (http.client.HTTPException, ValueError) as error:
            pytest.fail(f"case {case}: {method} {path!r}: {error!r}")
        statuses.add(status)
        assert status < 500, (case, method, path, body[:200], raw[:300])
        if status >= 400:
            assert content_type.startswith("application/json"), (case, method, path, status, raw[:200])
            assert "error" in json.loads(raw), (case, raw[:200])
    status, _, task = daemon.request("GET", "/tasks/keep")
    assert status == 200 and (task["n"], task["total"]) == (7, 9)
    assert daemon.request("GET", "/health")[0] == 200
    assert "Traceback" not in daemon.logs()
    assert {200, 400, 404} <= statuses


@pytest.mark.parametrize("garbage", [
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    b"GET / HTTP/1.1\r\nHost: x\r\nX-Bad: a\x00b\r\n\r\n",
    b"POST /progress HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
    b"POST /progress HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"NOT HTTP AT ALL\r\n\r\n",
])
def test_protocol_garbage_is_refused_and_the_daemon_goes_on(daemon, garbage):
    import socket

    with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as sock:
        sock.sendall(garbage)
        sock.shutdown(socket.SHUT_WR)
        reply = read_to_end(sock)
    assert reply == b"" or reply[:9] == b"HTTP/1.1 " and reply[9:10] in b"1234", reply[:100]
    assert daemon.request("GET", "/health")[0] == 200
