"""Methods a route does not implement: 405 with `Allow` and a JSON error, WebSocket included."""

import pytest

pytestmark = pytest.mark.gen_test

CASES = [
    ("PUT", "/progress", {"POST", "OPTIONS"}),
    ("PATCH", "/tasks", {"GET", "DELETE", "OPTIONS"}),
    ("POST", "/tasks/t", {"GET", "DELETE", "OPTIONS"}),
    ("POST", "/health", {"GET", "OPTIONS"}),
    ("DELETE", "/openapi.json", {"GET", "OPTIONS"}),
    ("POST", "/ws", {"GET"}),
    ("PUT", "/ws", {"GET"}),
    ("POST", "/static/index.html", {"GET", "HEAD"}),
]


@pytest.mark.parametrize("method, path, allowed", CASES)
async def test_unimplemented_method_is_405_with_allow_and_json(api, method, path, allowed):
    status, headers, body = await api.call(method, path, {} if method != "DELETE" else None)
    assert status == 405
    assert set(part.strip() for part in headers["Allow"].split(",")) == allowed
    assert headers["Content-Type"].startswith("application/json") and "error" in body
    assert headers["X-Content-Type-Options"] == "nosniff"
