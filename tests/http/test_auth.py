"""Tokens on every route and method, credentials in each place, CORS and WebSocket origins."""

import logging

import pytest
import tornado.httpclient
import tornado.web
import tornado.websocket

from progressistad import contract
from tests.route_matrix import (CREDENTIALS, KEPT, READ_TOKEN, ROUTE_IDS, ROUTES, WRITE_TOKEN,
                                check_answer, with_credential)

pytestmark = [pytest.mark.gen_test,
              pytest.mark.settings(api_tokens=(WRITE_TOKEN,), read_tokens=(READ_TOKEN,))]
WRITE_HEADERS = CREDENTIALS["write"].headers
READ_HEADERS = CREDENTIALS["read"].headers


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
@pytest.mark.parametrize("credential", list(CREDENTIALS))
async def test_every_route_with_every_credential(api, ctx, route, credential):
    await ctx.service.ingest([{"task_id": KEPT}])
    before = (await api.call("GET", "/tasks", headers=WRITE_HEADERS))[2]
    path, headers = with_credential(route.path, credential)
    status, answer_headers, reply = await api.call(route.method, path, route.body, headers=headers)
    if check_answer(route, credential, status, answer_headers, reply):
        assert KEPT in ctx.service.store, "a refused request changed state"
        after = (await api.call("GET", "/tasks", headers=WRITE_HEADERS))[2]
        assert after == before, "a refused request changed state"


async def test_the_table_has_every_route_and_method_of_the_application(app):
    """A route added to the application without a row in tests/route_matrix.py fails here."""
    covered = set()
    for rule in app.wildcard_router.rules:
        handler = rule.target
        if issubclass(handler, tornado.websocket.WebSocketHandler):
            continue
        for method in handler.SUPPORTED_METHODS:
            own = getattr(handler, method.lower(), None)
            if method == "OPTIONS" or own is getattr(tornado.web.RequestHandler, method.lower()):
                continue
            rows = {row for row, route in zip(ROUTE_IDS, ROUTES) if route.method == method
                    and rule.matcher.regex.match(route.path.split("?")[0])}
            assert rows, f"no row for {method} {rule.matcher.regex.pattern}"
            covered |= rows
    assert covered == set(ROUTE_IDS), "rows for routes the application does not have"


async def test_token_in_query_string(api):
    assert (await api.call("GET", f"/tasks?token={READ_TOKEN}"))[0] == 200
    assert (await api.call("GET", "/tasks?token=bad"))[0] == 401


async def test_token_in_meta_for_older_clients_and_not_stored(api):
    status, _, _ = await api.post({"task_id": "old", "meta": {"_token": WRITE_TOKEN, "a": 1}})
    assert status == 200
    _, _, task = await api.call("GET", "/tasks/old", headers=READ_HEADERS)
    assert task["meta"] == {"a": 1}


async def test_meta_token_must_cover_every_event_of_a_batch(api, ctx):
    batch = [{"task_id": "a", "meta": {"_token": WRITE_TOKEN}}, {"task_id": "b"}]
    status, _, _ = await api.post(batch)
    assert status == 401 and len(ctx.service.store) == 0


async def test_read_token_in_meta_cannot_write(api, ctx):
    status, _, _ = await api.post({"task_id": "a", "meta": {"_token": READ_TOKEN}})
    assert status == 403 and len(ctx.service.store) == 0


async def test_unauthenticated_bad_body_says_401_not_what_is_wrong(api):
    status, _, body = await api.call("POST", "/progress", raw=b"{broken")
    assert status == 401 and "JSON" not in body["error"]


async def test_cookie_set_by_dashboard_grants_access(api):
    status, headers, _ = await api.call("GET", f"/static/index.html?token={READ_TOKEN}")
    cookie = headers["Set-Cookie"]
    assert status == 200 and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    pair = cookie.split(";")[0]
    assert (await api.call("GET", "/tasks", headers={"Cookie": pair}))[0] == 200
    status, _, body = await api.call("GET", "/health", headers={"Cookie": pair})
    assert body["auth"] == {"required": True, "access": "read"}


async def test_dashboard_sets_no_cookie_for_a_wrong_token(api):
    _, headers, _ = await api.call("GET", "/static/index.html?token=nope")
    assert "Set-Cookie" not in headers


async def test_tokens_never_reach_the_access_log(api, caplog):
    caplog.set_level(logging.DEBUG, logger="progressistad.access")
    await api.call("GET", f"/tasks?token={WRITE_TOKEN}")
    await api.call("GET", "/tasks?token=wrong-secret")
    await api.call("GET", f"/static/index.html?token={READ_TOKEN}")
    text = caplog.text
    assert "REDACTED" in text
    for secret in (WRITE_TOKEN, "wrong-secret", READ_TOKEN):
        assert secret not in text


async def test_error_bodies_never_echo_tokens(api):
    for headers in ({"Authorization": "Bearer leaked-1"}, {}):
        _, _, body = await api.call("GET", "/tasks?token=leaked-2", headers=headers)
        assert "leaked" not in str(body)


async def ws_connect(api, path="/ws", headers=None):
    request = tornado.httpclient.HTTPRequest(api.ws_url + path, headers=headers or {})
    return await tornado.websocket.websocket_connect(request)


async def test_websocket_without_token_is_closed_4401(api):
    conn = await ws_connect(api)
    assert await conn.read_message() is None
    assert conn.close_code == contract.WS_CLOSE_UNAUTHORIZED


async def test_websocket_with_read_token_in_query_or_header(api):
    for path, headers in ((f"/ws?token={READ_TOKEN}", {}), ("/ws", READ_HEADERS)):
        conn = await ws_connect(api, path, headers)
        assert "tasks" in tornado.escape.json_decode(await conn.read_message())
        conn.close()


@pytest.mark.settings(allow_origins=("https://dash.example",))
async def test_cors_preflight_for_allowed_and_foreign_origins(api):
    status, headers, _ = await api.call("OPTIONS", "/progress", headers={
        "Origin": "https://dash.example", "Access-Control-Request-Method": "POST"})
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == "https://dash.example"
    assert "POST" in headers["Access-Control-Allow-Methods"]
    assert "Authorization" in headers["Access-Control-Allow-Headers"]
    status, headers, body = await api.call("OPTIONS", "/progress", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert status == 403 and "Access-Control-Allow-Origin" not in headers
    _, headers, _ = await api.call("GET", "/health", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in headers


@pytest.mark.settings(api_tokens=(), read_tokens=(), allow_origins=("https://dash.example",))
@pytest.mark.parametrize("origin, allowed", [
    ("https://evil.example", False),
    ("https://dash.example", True),
    (None, True),
    ("SAME", True),
])
async def test_websocket_origin_check(api, origin, allowed):
    headers = {}
    if origin == "SAME":
        headers["Origin"] = api.base_url
    elif origin:
        headers["Origin"] = origin
    if allowed:
        conn = await ws_connect(api, headers=headers)
        assert await conn.read_message() is not None
        conn.close()
    else:
        with pytest.raises(tornado.httpclient.HTTPClientError) as caught:
            await ws_connect(api, headers=headers)
        assert caught.value.code == 403
