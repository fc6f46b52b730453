"""Property tests against the real daemon: generated events, batches, query strings, headers
and WebSocket frames. Never a 5xx; every 4xx is a JSON error; a rejected request changes
nothing; an event is accepted exactly when the schema of record accepts it."""

from __future__ import annotations

import asyncio
import http.client
import json
import urllib.parse

import pytest
import tornado.websocket
from hypothesis import HealthCheck, given, settings, strategies as st

from progressistad.core.schemas import InvalidInput, load_events
from tests.support import DaemonProcess

pytestmark = pytest.mark.integration

PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                             suppress_health_check=[HealthCheck.too_slow,
                                                    HealthCheck.function_scoped_fixture])

TASK_IDS = st.sampled_from(["a", "b", "job:1", "é", "x" * 256]) | st.text(max_size=8)
ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children,
                                                                       max_size=3),
    max_leaves=6,
)
NUMBERS = st.integers(-2, 10**20) | st.floats(allow_nan=True, allow_infinity=True) | st.none()
FIELDS = {
    "task_id": TASK_IDS | ANY_JSON,
    "desc": st.text(max_size=1100) | ANY_JSON,
    "total": NUMBERS | ANY_JSON,
    "n": NUMBERS | ANY_JSON,
    "unit": st.text(max_size=70) | ANY_JSON,
    "status": st.sampled_from(["start", "update", "close", "error", "stale", "recovered", ""]) | ANY_JSON,
    "timestamp": NUMBERS | ANY_JSON,
    "meta": st.dictionaries(st.text(max_size=5), ANY_JSON, max_size=3) | ANY_JSON,
    "totl": ANY_JSON,
}
EVENTS = st.fixed_dictionaries({}, optional=FIELDS)
BODIES = EVENTS | st.lists(EVENTS, max_size=5) | ANY_JSON


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def strict_json(raw: bytes):
    """Parse a response body; NaN and Infinity, which browsers refuse, fail the test."""
    return json.loads(raw, parse_constant=_no_constant)


@pytest.fixture(scope="module")
def daemon():
    proc = DaemonProcess(["--max-body-bytes", "65536", "--log-level", "warning"])
    proc.start()
    yield proc
    proc.__exit__(None, None, None)


def call(daemon, method, path, body=b"", headers=None):
    conn = http.client.HTTPConnection(daemon.host, daemon.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}))
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type") or "", response.read()
    finally:
        conn.close()


def snapshot(daemon):
    status, _, raw = call(daemon, "GET", "/tasks")
    assert status == 200
    return strict_json(raw)["tasks"]


def check_answer(status, content_type, raw):
    assert status < 500, raw[:300]
    if status >= 400:
        assert content_type.startswith("application/json"), (status, raw[:200])
        assert isinstance(strict_json(raw).get("error"), str)
    elif content_type.startswith("application/json"):
        strict_json(raw)


def schema_accepts(payload) -> bool:
    try:
        load_events(payload)
    except InvalidInput:
        return False
    return True


@PROPERTY_SETTINGS
@given(body=BODIES)
def test_events_and_batches(daemon, body):
    raw = json.dumps(body).encode()
    before = snapshot(daemon)
    status, content_type, reply = call(daemon, "POST", "/progress", raw,
                                       {"Content-Type": "application/json"})
    check_answer(status, content_type, reply)
    if schema_accepts(body):
        assert status == 200, reply
        events = body if isinstance(body, list) else [body]
        assert strict_json(reply)["accepted"] == len(events)
        after = snapshot(daemon)
        assert {e["task_id"] for e in events} <= set(after)
    else:
        assert status == 400, reply
        assert snapshot(daemon) == before, "a rejected batch changed state"


QUERY_NAMES = st.sampled_from(["status", "older_than", "token", "protocol", "", "status[]"]) | st.text(max_size=6)
QUERY_VALUES = (st.sampled_from(["close", "stale,error", "-1", "1e309", "nan", "0", "", "update,"])
                | st.text(max_size=12))


@PROPERTY_SETTINGS
@given(method=st.sampled_from(["GET", "DELETE"]),
       params=st.lists(st.tuples(QUERY_NAMES, QUERY_VALUES), max_size=4),
       path=st.sampled_from(["/tasks", "/tasks/a", "/health", "/metrics", "/openapi.json"]))
def test_query_strings(daemon, method, params, path):
    call(daemon, "POST", "/progress", json.dumps({"task_id": "a"}).encode())
    query = urllib.parse.urlencode(params, encoding="utf-8", errors="surrogatepass")
    before = snapshot(daemon)
    status, content_type, reply = call(daemon, method, f"{path}?{query}")
    check_answer(status, content_type, reply)
    if method == "GET" or status >= 400:
        assert snapshot(daemon) == before


HEADER_NAMES = st.sampled_from(["Authorization", "Origin", "Cookie", "Content-Type", "Host",
                                "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
                                "X-Real-Ip", "Content-Length", "Accept", "Connection", "X-Junk"])
HEADER_VALUES = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF,
                                      blacklist_characters="\x7f"), max_size=40)


@PROPERTY_SETTINGS
@given(headers=st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=5),
       target=st.sampled_from([("GET", "/tasks"), ("POST", "/progress"), ("GET", "/health"),
                               ("DELETE", "/tasks?status=error"), ("GET", "/static/index.html"),
                               ("GET", "/ws"), ("OPTIONS", "/progress")]))
def test_headers(daemon, headers, target):
    method, path = target
    body = json.dumps({"task_id": "h", "n": 1}).encode() if method == "POST" else b""
    headers.pop("Content-Length", None)
    try:
        status, content_type, reply = call(daemon, method, path, body, headers)
    except (http.client.HTTPException, ConnectionError):
        return  # the HTTP parser refused the request outright: nothing reached the application
    if (status, content_type, reply) == (400, "", b""):
        return  # Tornado's HTTP parser refused a malformed Host header before any handler ran
    check_answer(status, content_type, reply)


FRAMES = st.lists(st.binary(max_size=64) | st.text(max_size=64)
                  | st.just("x" * 5000) | st.just(b"\x00" * 5000), min_size=1, max_size=4)


@settings(PROPERTY_SETTINGS, max_examples=30)
@given(frames=FRAMES)
def test_websocket_frames_from_a_dashboard(daemon, frames):
    async def scenario():
        noisy = await tornado.websocket.websocket_connect(f"{daemon.ws_url}/ws?protocol=delta")
        assert strict_json((await noisy.read_message()).encode())["type"] == "snapshot"
        for frame in frames:
            try:
                await noisy.write_message(frame, binary=isinstance(frame, bytes))
            except tornado.websocket.WebSocketClosedError:
                break
        calm = await tornado.websocket.websocket_connect(f"{daemon.ws_url}/ws")
        assert "tasks" in strict_json((await calm.read_message()).encode())
        noisy.close()
        calm.close()

    asyncio.run(asyncio.wait_for(scenario(), 20))
    assert call(daemon, "GET", "/health")[0] == 200


def test_the_daemon_logged_no_traceback(daemon):
    assert "Traceback" not in daemon.logs()
