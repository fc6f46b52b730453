"""Security of the real daemon: every route and method against every kind of credential,
secrets kept out of every output, foreign origins, spoofed proxy headers, and the headers
every response carries."""

from __future__ import annotations

import asyncio
import http.client
import json
import subprocess
import sys

import pytest
import tornado.httpclient
import tornado.websocket

from progressistad import contract
from tests.route_matrix import (CREDENTIALS, KEPT, NOTHING, READ_TOKEN, ROUTE_IDS, ROUTES,
                                WRITE_TOKEN, check_answer, with_credential)
from tests.support import DaemonProcess, clean_env, decode_body, post, wait_for

pytestmark = pytest.mark.integration

TOKENS = {"PROGRESSISTA_API_TOKENS": WRITE_TOKEN, "PROGRESSISTA_READ_TOKENS": READ_TOKEN}
WRITE_HEADERS = CREDENTIALS["write"].headers


@pytest.fixture(scope="module")
def guarded():
    daemon = DaemonProcess(["--log-level", "debug"], TOKENS).start()
    yield daemon
    daemon.__exit__()


def call(daemon, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection(daemon.host, daemon.port, timeout=10)
    try:
        data = None if body is None else json.dumps(body)
        conn.request(method, path, body=data, headers=dict(headers or {}))
        response = conn.getresponse()
        raw = response.read()
        return response.status, response, raw
    finally:
        conn.close()


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
@pytest.mark.parametrize("credential", list(CREDENTIALS))
def test_every_route_and_method_with_every_credential(guarded, route, credential):
    post(guarded, {"task_id": KEPT, "n": 1}, WRITE_HEADERS)
    before = json.loads(call(guarded, "GET", "/tasks", headers=WRITE_HEADERS)[2])
    target, headers = with_credential(route.path, credential)
    status, response, raw = call(guarded, route.method, target, route.body, headers)
    if check_answer(route, credential, status, response.headers, decode_body(raw)):
        after = json.loads(call(guarded, "GET", "/tasks", headers=WRITE_HEADERS)[2])
        assert after == before, "a refused request changed state"


async def _websocket(daemon, path="/ws", headers=None):
    request = tornado.httpclient.HTTPRequest(f"{daemon.ws_url}{path}", headers=headers or {})
    conn = await tornado.websocket.websocket_connect(request)
    message = await conn.read_message()
    code = conn.close_code
    conn.close()
    return message, code


@pytest.mark.parametrize("credential", list(CREDENTIALS))
def test_websocket_with_every_credential(guarded, credential):
    path, headers = with_credential("/ws", credential)
    message, code = asyncio.run(_websocket(guarded, path, headers))
    if CREDENTIALS[credential].grants == NOTHING:
        assert message is None and code == contract.WS_CLOSE_UNAUTHORIZED
    else:
        assert "tasks" in json.loads(message)


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1.evil.example",
                                   "https://127.0.0.1"])
def test_websocket_hijacking_from_a_foreign_origin_is_refused(guarded, origin):
    """A page elsewhere cannot ride the dashboard's cookie into /ws."""
    headers = {"Origin": origin, "Cookie": f"{contract.TOKEN_COOKIE}={READ_TOKEN}"}
    with pytest.raises(tornado.httpclient.HTTPClientError) as refused:
        asyncio.run(_websocket(guarded, headers=headers))
    assert refused.value.code == 403


def test_same_origin_dashboard_with_its_cookie_connects(guarded):
    headers = {"Origin": guarded.url, "Cookie": f"{contract.TOKEN_COOKIE}={READ_TOKEN}"}
    message, _ = asyncio.run(_websocket(guarded, headers=headers))
    assert "tasks" in json.loads(message)


def test_security_headers_on_every_kind_of_response(guarded):
    cases = [("GET", "/health"), ("GET", "/tasks"), ("GET", "/nowhere"), ("PUT", "/progress"),
             ("GET", "/static/index.html"), ("GET", "/static/missing.js"), ("GET", "/openapi.json"),
             ("POST", "/ws"), ("GET", "/ws"), ("GET", "/")]
    for method, path in cases:
        status, response, _ = call(guarded, method, path, headers=WRITE_HEADERS)
        assert response.getheader("X-Content-Type-Options") == "nosniff", (method, path, status)
        assert response.getheader("Referrer-Policy") == "no-referrer", (method, path, status)
    _, response, _ = call(guarded, "GET", "/static/index.html")
    policy = {part.split()[0]: part.split()[1:] for part in
              response.getheader("Content-Security-Policy").split(";") if part.strip()}
    assert policy["default-src"] == ["'self'"] and policy["script-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    assert not any("unsafe" in value for values in policy.values() for value in values)


# ---- secrets in outputs

SECRETS = {
    "env-write": "secret-env-write-111", "env-read": "secret-env-read-222",
    "file-write": "secret-file-write-333", "file-read": "secret-file-read-444",
    "cred-write": "secret-cred-write-555", "cred-read": "secret-cred-read-666",
    "wrong": "secret-wrong-guess-777",
}


def token_sources(tmp_path):
    (tmp_path / "write.tokens").write_text(f"# tokens\n{SECRETS['file-write']}\n")
    (tmp_path / "read.tokens").write_text(f"{SECRETS['file-read']}\n")
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "api-tokens").write_text(SECRETS["cred-write"] + "\n")
    (credentials / "read-tokens").write_text(SECRETS["cred-read"] + "\n")
    args = ["--api-tokens-file", str(tmp_path / "write.tokens"),
            "--read-tokens-file", str(tmp_path / "read.tokens"),
            "--storage-path", str(tmp_path / "state.json"), "--persist-interval", "0.1"]
    env = {"PROGRESSISTA_API_TOKENS": SECRETS["env-write"],
           "PROGRESSISTA_READ_TOKENS": SECRETS["env-read"],
           "CREDENTIALS_DIRECTORY": str(credentials)}
    return args, env


OWN_URL_HEADERS = ("set-cookie", "location")
"""The dashboard's cookie holds the token its opener gave; `GET /?token=T` redirects to the
dashboard with the caller's own query string (SPEC 2). Both go back to the client that sent it."""


def exercise(daemon):
    """Every route with every secret in every place a client may put it; all answers' text."""
    seen = []
    for secret in SECRETS.values():
        for headers, query in (({"Authorization": f"Bearer {secret}"}, ""), ({}, f"?token={secret}"),
                               ({"Cookie": f"{contract.TOKEN_COOKIE}={secret}"}, "")):
            for method, path, body, *_ in ROUTES + (("GET", "/nowhere", None),):
                sep = "&" if "?" in path and query else ""
                target = path + (sep + query[1:] if sep else query)
                status, response, raw = call(daemon, method, target, body, headers)
                headers_text = "\n".join(f"{k}: {v}" for k, v in response.getheaders()
                                         if k.lower() not in OWN_URL_HEADERS)
                seen.append(f"{method} {path} {status}\n{headers_text}\n"
                            + raw.decode("utf-8", "replace"))
        meta_event = {"task_id": "meta", "meta": {"_token": secret, "note": "x"}}
        status, _, raw = call(daemon, "POST", "/progress", meta_event)
        seen.append(raw.decode())
        status, _, raw = call(daemon, "POST", "/progress", [{"task_id": "bad", "n": -1,
                                                             "meta": {"_token": secret}}])
        seen.append(raw.decode())
    return "\n".join(seen)


def test_no_token_from_any_source_reaches_logs_answers_config_or_state(tmp_path):
    args, env = token_sources(tmp_path)
    daemon = DaemonProcess(args + ["--log-level", "debug"], env).start()
    try:
        answers = exercise(daemon)
        status, _, raw = call(daemon, "GET", "/tasks", headers={"Authorization": f"Bearer {SECRETS['cred-read']}"})
        assert status == 200 and "meta" in json.loads(raw)["tasks"], "the meta-token event was refused"
        assert daemon.stop() == 0
        logs = daemon.logs()
        state = (tmp_path / "state.json").read_text()
    finally:
        daemon.__exit__()
    printed = subprocess.run([sys.executable, "-m", "progressistad", "--print-config", *args],
                             env=clean_env(env), capture_output=True, text=True, timeout=30)
    assert printed.returncode == 0, printed.stderr
    outputs = {"logs": logs, "answers": answers, "state file": state,
               "--print-config": printed.stdout + printed.stderr}
    for where, text in outputs.items():
        for name, secret in SECRETS.items():
            assert secret not in text, f"token {name} appears in {where}"
    assert "REDACTED" in logs  # the access log did see the query strings, redacted


# ---- proxies: Host and X-Forwarded-*


@pytest.fixture
def proxied(daemon_factory):
    def start(trust: bool):
        return daemon_factory(["--log-level", "debug"] + (["--trust-proxy"] if trust else []), TOKENS)
    return start


SPOOF = {"X-Forwarded-For": "203.0.113.66", "X-Real-Ip": "203.0.113.66",
         "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"}


@pytest.mark.parametrize("trust", [False, True], ids=["untrusted", "trust-proxy"])
def test_forwarded_headers_count_only_behind_a_trusted_proxy(proxied, trust):
    daemon = proxied(trust)
    _, response, _ = call(daemon, "GET", f"/static/index.html?token={READ_TOKEN}", headers=SPOOF)
    cookie = response.getheader("Set-Cookie")
    assert ("Secure" in cookie) is trust, cookie
    call(daemon, "GET", "/nowhere-logged", headers=SPOOF)
    logged = wait_for(lambda: [line for line in daemon.logs().splitlines()
                               if "/nowhere-logged" in line], message="the access log line")
    assert ("203.0.113.66" in logged[-1]) is trust, logged
    headers = {"Origin": "http://evil.example", "X-Forwarded-Host": "evil.example",
               "Authorization": f"Bearer {READ_TOKEN}"}
    if trust:
        message, _ = asyncio.run(_websocket(daemon, headers=headers))
        assert "tasks" in json.loads(message)
    else:
        with pytest.raises(tornado.httpclient.HTTPClientError) as refused:
            asyncio.run(_websocket(daemon, headers=headers))
        assert refused.value.code == 403


def test_a_spoofed_host_header_is_not_used_to_build_addresses(guarded):
    status, response, _ = call(guarded, "GET", "/", headers={"Host": "evil.example"})
    assert status == 302 and response.getheader("Location").startswith("/")
    _, _, raw = call(guarded, "GET", "/openapi.json", headers={"Host": "evil.example"})
    assert "evil.example" not in raw.decode()
