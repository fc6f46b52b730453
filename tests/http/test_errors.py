"""Every error the daemon answers, WebSocket refusals included, has the one JSON shape.

`{"error": message, ...details}` with the security headers, from one writer
(progressistad/web/base.py); never a traceback, never a token.
"""

import pytest

from progressistad.service import StoreUnavailable

pytestmark = [pytest.mark.gen_test, pytest.mark.settings(
    api_tokens=("rw-token",), read_tokens=("ro-token",), max_body_bytes=1000, max_tasks=1,
    allow_origins=("https://dash.example",))]

WRITE = {"Authorization": "Bearer rw-token"}
READ = {"Authorization": "Bearer ro-token"}
HANDSHAKE = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
             "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}

CASES = [
    # name, method, path, raw body, headers, status, detail keys, headers the answer must have
    ("malformed JSON", "POST", "/progress", b"{broken", WRITE, 400, set(), {}),
    ("invalid event", "POST", "/progress", b'[{"task_id": "a"}, {"task_id": "b", "n": -1}]', WRITE,
     400, {"field", "index", "errors"}, {}),
    ("empty batch", "POST", "/progress", b"[]", WRITE, 400, set(), {}),
    ("bad query", "GET", "/tasks?status=bogus", None, WRITE, 400, {"parameter"}, {}),
    ("unknown query parameter", "GET", "/tasks?colour=red", None, WRITE, 400, {"parameter"}, {}),
    ("bulk delete without a filter", "DELETE", "/tasks", None, WRITE, 400, set(), {}),
    ("no token", "GET", "/tasks", None, {}, 401, set(), {"WWW-Authenticate": "Bearer"}),
    ("wrong token", "POST", "/progress", b'{"task_id": "a"}', {"Authorization": "Bearer x"}, 401,
     set(), {"WWW-Authenticate": "Bearer"}),
    ("read token writing", "DELETE", "/tasks/a", None, READ, 403, set(), {}),
    ("read token posting", "POST", "/progress", b'{"task_id": "a"}', READ, 403, set(), {}),
    ("read token in meta", "POST", "/progress", b'{"task_id": "a", "meta": {"_token": "ro-token"}}',
     {}, 403, set(), {}),
    ("foreign preflight", "OPTIONS", "/progress", None, {"Origin": "https://evil.example"}, 403,
     set(), {}),
    ("unknown task", "GET", "/tasks/missing", None, WRITE, 404, {"task_id"}, {}),
    ("unknown path", "GET", "/nowhere", None, {}, 404, {"path"}, {}),
    ("missing dashboard file", "GET", "/static/missing.js", None, {}, 404, set(), {}),
    ("control character in a file name", "GET", "/static/a%01b.js", None, {}, 404, set(), {}),
    ("API method not implemented", "PUT", "/tasks", b"{}", WRITE, 405, set(), {"Allow": "GET"}),
    ("file method not implemented", "POST", "/static/index.html", b"", {}, 405, set(),
     {"Allow": "GET"}),
    ("contract module method", "POST", "/static/contract.js", b"", WRITE, 405, set(),
     {"Allow": "GET"}),
    ("body too large", "POST", "/progress", b"[" + b" " * 2000 + b"]", {}, 413, {"limit"}, {}),
    ("task limit", "POST", "/progress", b'[{"task_id": "b"}, {"task_id": "c"}]', WRITE, 503,
     {"max_tasks"}, {"Retry-After": ""}),
    ("not a WebSocket handshake", "GET", "/ws", None, {}, 400, set(), {}),
    ("handshake without a key", "GET", "/ws", None,
     {k: v for k, v in HANDSHAKE.items() if k != "Sec-WebSocket-Key"}, 400, set(), {}),
    ("unsupported WebSocket version", "GET", "/ws", None, {**HANDSHAKE, "Sec-WebSocket-Version": "12"},
     426, set(), {"Sec-WebSocket-Version": "13"}),
    ("foreign WebSocket origin", "GET", "/ws", None, {**HANDSHAKE, "Origin": "https://evil.example"},
     403, set(), {}),
    ("WebSocket method not implemented", "POST", "/ws", b"", {}, 405, set(), {"Allow": "GET"}),
]


def assert_error_shape(status, headers, body, expected_status, details, must_have):
    assert status == expected_status, body
    assert headers["Content-Type"].startswith("application/json")
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"], body
    assert set(body) - {"error"} == details, body
    assert "Traceback" not in body["error"]
    assert "rw-token" not in str(body) and "ro-token" not in str(body)
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Frame-Options"] == "DENY"
    for name, start in must_have.items():
        assert headers[name].startswith(start), (name, headers.get(name))


@pytest.mark.parametrize("name, method, path, raw, headers, status, details, must_have", CASES,
                         ids=[case[0] for case in CASES])
async def test_every_error_path_answers_the_one_shape(api, name, method, path, raw, headers, status,
                                                      details, must_have):
    status_seen, answer_headers, body = await api.call(method, path, raw=raw, headers=headers)
    assert_error_shape(status_seen, answer_headers, body, status, details, must_have)


async def test_a_shared_store_out_of_reach_is_503_with_retry_after(api, ctx, monkeypatch):
    async def unreachable(*args, **kwargs):
        raise StoreUnavailable("the task store is out of reach")

    monkeypatch.setattr(ctx.service, "tasks_body", unreachable)
    status, headers, body = await api.call("GET", "/tasks", headers=READ)
    assert_error_shape(status, headers, body, 503, set(), {"Retry-After": ""})
    assert body["error"] == "the task store is out of reach"


async def test_an_unexpected_failure_is_500_without_its_detail(api, ctx, monkeypatch):
    async def broken(*args, **kwargs):
        raise RuntimeError("internal detail /var/lib/secret")

    monkeypatch.setattr(ctx.service, "get", broken)
    status, headers, body = await api.call("GET", "/tasks/a", headers=READ)
    assert_error_shape(status, headers, body, 500, set(), {})
    assert body == {"error": "internal server error"}


async def test_api_errors_keep_cors_for_a_listed_origin(api):
    status, headers, body = await api.call("GET", "/tasks", headers={"Origin": "https://dash.example"})
    assert_error_shape(status, headers, body, 401, set(), {})
    assert headers["Access-Control-Allow-Origin"] == "https://dash.example"
    assert headers["Cache-Control"] == "no-store"
