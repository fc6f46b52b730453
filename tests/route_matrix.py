"""Every route and method against every kind of credential: the one table both the HTTP layer
(the application in-process) and the integration layer (the real daemon) check."""

from __future__ import annotations

from typing import Any, Dict, Mapping, NamedTuple, Tuple

from progressistad import contract

WRITE_TOKEN = "rw-0123456789abcdef"
READ_TOKEN = "ro-fedcba9876543210"
KEPT = "kept"
"""The task each case starts with, so that reads find it and a refused delete could lose it."""

PUBLIC, READ, WRITE, NOTHING = "public", "read", "write", "nothing"


class Route(NamedTuple):
    method: str
    path: str
    body: Any
    needs: str
    allowed: int = 200
    """The status when the credential is enough."""


ROUTES: Tuple[Route, ...] = (
    Route("POST", "/progress", {"task_id": "new"}, WRITE),
    Route("GET", "/tasks", None, READ),
    Route("GET", "/tasks?status=update", None, READ),
    Route("DELETE", "/tasks?status=update", None, WRITE),
    Route("DELETE", "/tasks?status=close", None, WRITE),
    Route("GET", f"/tasks/{KEPT}", None, READ),
    Route("GET", f"/tasks/{KEPT}/log", None, READ),
    Route("GET", f"/tasks/{KEPT}/series", None, READ),
    Route("DELETE", f"/tasks/{KEPT}", None, WRITE),
    Route("GET", "/history", None, READ),
    Route("GET", "/history?job=kept&status=close&limit=5", None, READ),
    Route("GET", "/history/jobs", None, READ),
    Route("DELETE", "/history?older_than=0", None, WRITE),
    Route("GET", "/metrics", None, READ),
    Route("GET", "/health", None, PUBLIC),
    Route("GET", "/openapi.json", None, PUBLIC),
    Route("GET", "/notifications", None, READ),
    Route("POST", "/notifications/test?route=nowhere", None, WRITE, 404),
    Route("GET", "/static/index.html", None, PUBLIC),
    Route("HEAD", "/static/index.html", None, PUBLIC),
    Route("GET", "/favicon.ico", None, PUBLIC),
    Route("HEAD", "/favicon.ico", None, PUBLIC),
    Route("GET", "/static/contract.js", None, PUBLIC),
    Route("HEAD", "/static/contract.js", None, PUBLIC),
    Route("GET", "/", None, PUBLIC, 302),
)
"""The WebSocket (`/ws`) and CORS preflights (OPTIONS) have tests of their own."""
ROUTE_IDS = [f"{route.method} {route.path}" for route in ROUTES]


class Credential(NamedTuple):
    grants: str
    headers: Mapping[str, str]
    query: str = ""


CREDENTIALS: Dict[str, Credential] = {
    "none": Credential(NOTHING, {}),
    "wrong": Credential(NOTHING, {"Authorization": "Bearer wrong-token-4242"}),
    "read": Credential(READ, {"Authorization": f"Bearer {READ_TOKEN}"}),
    "write": Credential(WRITE, {"Authorization": f"Bearer {WRITE_TOKEN}"}),
    "read-cookie": Credential(READ, {"Cookie": f"{contract.TOKEN_COOKIE}={READ_TOKEN}"}),
    "write-query": Credential(WRITE, {}, f"token={WRITE_TOKEN}"),
}


def with_credential(path: str, name: str) -> Tuple[str, Dict[str, str]]:
    """The path and headers that present credential `name`."""
    credential = CREDENTIALS[name]
    if credential.query:
        path += ("&" if "?" in path else "?") + credential.query
    return path, dict(credential.headers)


def expected_status(route: Route, name: str) -> int:
    grants = CREDENTIALS[name].grants
    if route.needs == PUBLIC or grants == WRITE or (grants == READ and route.needs == READ):
        return route.allowed
    return 403 if grants == READ else 401


def check_answer(route: Route, name: str, status: int, headers: Any, body: Any) -> bool:
    """Assert the answer the table expects; True when it was a refusal, which must change nothing."""
    expected = expected_status(route, name)
    assert status == expected, (status, str(body)[:200])
    if expected == route.allowed:
        return False
    assert "error" in body, body
    if expected == 401:
        assert headers.get("WWW-Authenticate", "").startswith("Bearer")
    return True
