"""GET /static/contract.js: the wire contract as the JavaScript module the dashboard imports."""

import pytest

from tests.contract_module import contract_values, exported

pytestmark = pytest.mark.gen_test


async def test_the_module_exports_every_contract_constant(api):
    status, headers, source = await api.call("GET", "/static/contract.js")
    assert status == 200
    assert exported(source) == contract_values()
    for name in ("STATUSES", "ACTIVE_STATUSES", "WS_CLOSE_UNAUTHORIZED", "WS_PROTOCOL_PARAM",
                 "WS_MESSAGE_DELTA", "TOKEN_QUERY_PARAM"):
        assert name in exported(source), f"the dashboard imports {name}"


@pytest.mark.settings(api_tokens=("rw-token",), read_tokens=("ro-token",))
async def test_served_without_a_token_as_javascript_with_the_dashboard_headers(api):
    status, headers, _ = await api.call("GET", "/static/contract.js")
    assert status == 200
    assert headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Cache-Control"] == "no-cache"
    _, page_headers, _ = await api.call("GET", "/static/index.html")
    assert headers["Content-Security-Policy"] == page_headers["Content-Security-Policy"]
    status, head_headers, body = await api.call("HEAD", "/static/contract.js")
    assert status == 200 and body == "" and head_headers["Content-Type"] == headers["Content-Type"]


async def test_revalidation_answers_304(api):
    _, headers, _ = await api.call("GET", "/static/contract.js")
    status, _, body = await api.call("GET", "/static/contract.js",
                                     headers={"If-None-Match": headers["Etag"]})
    assert status == 304 and body == ""


@pytest.mark.settings(base_path="/under")
async def test_follows_the_base_path(api):
    status, _, source = await api.call("GET", "/under/static/contract.js")
    assert status == 200 and exported(source) == contract_values()
    assert (await api.call("GET", "/static/contract.js"))[0] == 404
