"""HTTP handlers. Each one parses, calls the task service, writes; errors are JSON from one place."""

from __future__ import annotations

import os
from http import HTTPStatus
from typing import Any, Awaitable, Dict, Mapping, Optional, Sequence
from urllib.parse import urlsplit

import tornado.web

from progressistad import contract
from progressistad.web import metrics as prom, openapi
from progressistad.web.auth import Access, bearer_token
from progressistad.web.context import AppContext
from progressistad.core.schemas import InvalidInput, TaskQuery, load_events, parse_json
from progressistad.service import StoreUnavailable
from progressistad.core.store import CapacityError

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
CORS_METHODS = "GET, POST, DELETE, OPTIONS"
CORS_HEADERS = "Authorization, Content-Type"
CORS_MAX_AGE = "600"


def allowed_methods(handler: tornado.web.RequestHandler) -> str:
    """The `Allow` header of a 405 (RFC 9110): the methods this handler implements."""
    base = tornado.web.RequestHandler
    return ", ".join(method for method in handler.SUPPORTED_METHODS
                     if getattr(type(handler), method.lower(), None)
                     is not getattr(base, method.lower(), None))


class ApiError(tornado.web.HTTPError):
    """An error answered as `{"error": message, **details}` with `status`."""

    def __init__(self, status: int, message: str, headers: Optional[Mapping[str, str]] = None,
                 **details: Any) -> None:
        super().__init__(status, reason=HTTPStatus(status).phrase)
        self.message = message
        self.details = details
        self.headers = dict(headers or {})


def unauthorized(message: str = "missing or invalid token") -> ApiError:
    return ApiError(401, message, headers={"WWW-Authenticate": 'Bearer realm="progressista"'})


class RequestAuth:
    """Reads a request's credentials and the origin it came from; shared by HTTP and WebSocket."""

    request: Any
    ctx: AppContext

    def request_token(self) -> Optional[str]:
        """The token from the Authorization header, `?token=` or the dashboard cookie."""
        header = bearer_token(self.request.headers.get("Authorization"))
        if header:
            return header
        query = self.request.query_arguments.get(contract.TOKEN_QUERY_PARAM)
        if query:
            return query[-1].decode("utf-8", "surrogateescape")
        cookie = self.request.cookies.get(contract.TOKEN_COOKIE)
        return cookie.value if cookie is not None else None

    def request_access(self) -> Access:
        return self.ctx.tokens.access(self.request_token())

    def origin_allowed(self, origin: str) -> bool:
        """Same origin as the request's Host, or listed in --allow-origins."""
        if origin.rstrip("/") in self.ctx.allow_origins:
            return True
        host = self.request.headers.get("Host", "")
        if self.ctx.settings.trust_proxy:
            host = self.request.headers.get("X-Forwarded-Host", host).split(",")[0].strip()
        return bool(host) and urlsplit(origin).netloc.lower() == host.lower()


class ApiHandler(RequestAuth, tornado.web.RequestHandler):
    """Base of every HTTP handler: denies by default, answers errors as JSON, sets headers.

    `access` maps a method to what it requires; methods not listed need write access.
    """

    access: Mapping[str, Access] = {}

    def initialize(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def set_default_headers(self) -> None:
        for name, value in SECURITY_HEADERS.items():
            self.set_header(name, value)
        self.set_header("Cache-Control", "no-store")

    def allow_listed_origin(self) -> None:
        """CORS: echo the Origin when it is on --allow-origins (set again after an error clears)."""
        origin = self.request.headers.get("Origin")
        if origin and origin.rstrip("/") in self.ctx.allow_origins:
            self.set_header("Access-Control-Allow-Origin", origin)
            self.set_header("Vary", "Origin")

    def prepare(self) -> None:
        self.allow_listed_origin()
        if self.request.method == "OPTIONS":
            return
        self.check_access(self.access.get(self.request.method, Access.WRITE))

    def check_access(self, required: Access) -> None:
        if required == Access.NONE:
            return
        granted = self.request_access()
        if granted >= required:
            return
        if granted == Access.READ:
            raise ApiError(403, "this token may only read")
        raise unauthorized()

    def options(self, *args: Any) -> None:
        """CORS preflight: 204 for an allowed origin, 403 for any other."""
        origin = self.request.headers.get("Origin", "")
        if origin.rstrip("/") not in self.ctx.allow_origins:
            raise ApiError(403, "origin not allowed; add it to --allow-origins")
        self.set_header("Access-Control-Allow-Methods", CORS_METHODS)
        self.set_header("Access-Control-Allow-Headers", CORS_HEADERS)
        self.set_header("Access-Control-Max-Age", CORS_MAX_AGE)
        self.set_status(204)

    def write_json(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(payload if not isinstance(payload, (list, str)) else _json(payload))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = kwargs.get("exc_info", (None, None, None))[1]
        self.allow_listed_origin()
        if status_code == 405:
            self.set_header("Allow", allowed_methods(self))
        body: Dict[str, Any]
        if isinstance(error, ApiError):
            for name, value in error.headers.items():
                self.set_header(name, value)
            body = {"error": error.message, **error.details}
        elif isinstance(error, tornado.web.HTTPError) and error.log_message and status_code < 500:
            body = {"error": _client_safe(error)}
        else:
            body = {"error": self._reason.lower() if self._reason else "error"}
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(body)

    def rejected(self, error: InvalidInput, reason: str, events: int = 1) -> ApiError:
        """Count a rejection and return the 400 that says what was wrong."""
        self.ctx.metrics.reject(reason, events)
        return ApiError(400, error.message, **error.details)

    async def call(self, awaitable: Awaitable[Any]) -> Any:
        """Await a task-service call; a shared store out of reach answers 503 with Retry-After."""
        try:
            return await awaitable
        except StoreUnavailable as error:
            retry = str(max(1, round(self.ctx.settings.cleanup_interval)))
            raise ApiError(503, str(error), headers={"Retry-After": retry}) from None

    def parse_query(self, allowed: Sequence[str]) -> TaskQuery:
        try:
            return TaskQuery.parse(self.request.query_arguments, allowed)
        except InvalidInput as error:
            raise ApiError(400, error.message, **error.details) from None


def _json(value: Any) -> str:
    return tornado.escape.json_encode(value)


def _client_safe(error: tornado.web.HTTPError) -> str:
    message = error.log_message or ""
    return message % error.args if error.args else message


@tornado.web.stream_request_body
class ProgressHandler(ApiHandler):
    """POST /progress: apply one event or a batch (a JSON array), all or none.

    200 `{"ok": true, "accepted": N, "ignored": [unknown fields]}`; 400 malformed
    or invalid (naming field and batch index); 401 no valid write token; 413 body
    over --max-body-bytes; 503 with Retry-After when --max-tasks is exhausted.
    """

    def prepare(self) -> None:
        self.allow_listed_origin()
        self._chunks: list = []
        self._size = 0
        declared = self.request.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.ctx.settings.max_body_bytes:
            # Raise tornado's own limit so it does not answer 400 behind our 413;
            # the connection closes once the 413 is written, unread body and all.
            self.request.connection.set_max_body_size(int(declared))
            self._refuse_too_large()
            return
        self._header_access = self.request_access()
        if self._header_access == Access.READ:
            raise ApiError(403, "this token may only read")

    def data_received(self, chunk: bytes) -> None:
        if self._finished:
            return
        self._size += len(chunk)
        if self._size > self.ctx.settings.max_body_bytes:
            self._refuse_too_large()
        else:
            self._chunks.append(chunk)

    def _refuse_too_large(self) -> None:
        limit = self.ctx.settings.max_body_bytes
        self.ctx.metrics.reject("too_large")
        error = ApiError(413, f"request body larger than --max-body-bytes={limit}", limit=limit)
        self.send_error(413, exc_info=(ApiError, error, None))
        self._chunks = []

    async def post(self) -> None:
        if self._finished:
            return
        try:
            payload = parse_json(b"".join(self._chunks))
        except InvalidInput as error:
            self._require_write_before_detail()
            raise self.rejected(error, "malformed") from None
        try:
            parsed = load_events(payload)
        except InvalidInput as error:
            self._require_write_before_detail()
            raise self.rejected(error, "invalid", len(payload) if isinstance(payload, list) else 1)
        self._authorize(parsed.meta_tokens)
        try:
            await self.call(self.ctx.service.ingest(parsed.events))
        except CapacityError as error:
            self.ctx.metrics.reject("capacity", len(parsed.events))
            retry = str(max(1, round(self.ctx.settings.cleanup_interval)))
            raise ApiError(503, str(error), headers={"Retry-After": retry},
                           max_tasks=error.max_tasks) from None
        self.write_json({"ok": True, "accepted": len(parsed.events), "ignored": parsed.ignored})

    def _require_write_before_detail(self) -> None:
        """Without a header token, say 401 rather than describe a body we may not read."""
        if self._header_access < Access.WRITE and self.ctx.tokens.enabled:
            self.ctx.metrics.reject("unauthorized")
            raise unauthorized()

    def _authorize(self, meta_tokens: list) -> None:
        if self._header_access >= Access.WRITE:
            return
        granted = [self.ctx.tokens.access(token) for token in meta_tokens]
        if all(access >= Access.WRITE for access in granted):
            return
        self.ctx.metrics.reject("unauthorized", len(meta_tokens))
        if any(access == Access.READ for access in granted):
            raise ApiError(403, "this token may only read")
        raise unauthorized()


class TasksHandler(ApiHandler):
    """GET /tasks[?status=S,..]: `{"tasks": {...}}`. DELETE /tasks?status=S&older_than=SEC:
    remove tasks matching every given filter (at least one), `{"removed": [ids]}`."""

    access = {"GET": Access.READ}

    async def get(self) -> None:
        query = self.parse_query(allowed=("status",))
        self.write_json({"tasks": await self.call(self.ctx.service.snapshot(query.statuses))})

    async def delete(self) -> None:
        query = self.parse_query(allowed=("status", "older_than"))
        if query.statuses is None and query.older_than is None:
            raise ApiError(400, "bulk delete needs a filter: status=S and/or older_than=SEC"
                                " (older_than=0 removes every task)")
        removed = await self.call(self.ctx.service.remove_where(query.statuses, query.older_than))
        self.write_json({"removed": removed})


class TaskHandler(ApiHandler):
    """GET /tasks/{task_id}: the task, 404 if unknown. DELETE: `{"removed": true/false}`."""

    access = {"GET": Access.READ}

    async def get(self, task_id: str) -> None:
        task = await self.call(self.ctx.service.get(task_id))
        if task is None:
            raise ApiError(404, "no such task", task_id=task_id[: contract.TASK_ID_MAX_CHARS])
        self.write_json(task)

    async def delete(self, task_id: str) -> None:
        self.write_json({"removed": await self.call(self.ctx.service.remove(task_id))})


class HealthHandler(ApiHandler):
    """GET /health (no token): `{"status": "ok", "tasks": N, ...}`; 503 when degraded."""

    access = {"GET": Access.NONE}

    def get(self) -> None:
        report = self.ctx.health()
        report["auth"] = {
            "required": self.ctx.tokens.enabled,
            "access": self.request_access().name.lower(),
        }
        self.write_json(report, 200 if report["status"] == "ok" else 503)


class MetricsHandler(ApiHandler):
    """GET /metrics: Prometheus text exposition."""

    access = {"GET": Access.READ}

    def get(self) -> None:
        self.set_header("Content-Type", prom.CONTENT_TYPE)
        self.finish(prom.render(self.ctx.metric_families()))


class OpenApiHandler(ApiHandler):
    """GET /openapi.json (no token): the OpenAPI 3 description of this API."""

    access = {"GET": Access.NONE}

    def get(self) -> None:
        self.write_json(openapi.document(self.ctx.settings.base_path))


class RootHandler(ApiHandler):
    """GET /: redirect to the dashboard, keeping the query string (so `/?token=T` works)."""

    access = {"GET": Access.NONE}

    def get(self) -> None:
        target = self.ctx.settings.base_path + "/static/index.html"
        if self.request.query:
            target += "?" + self.request.query
        self.redirect(target)


class NotFoundHandler(ApiHandler):
    """Any other path: 404 as JSON."""

    access = {}

    def prepare(self) -> None:
        raise ApiError(404, "no such path", path=self.request.path[:256])


class DashboardHandler(RequestAuth, tornado.web.StaticFileHandler):
    """GET /static/...: the dashboard files, with a strict Content-Security-Policy.

    `index.html?token=T` with a valid token sets an HttpOnly cookie, so the page
    can drop the token from its address and from every later URL.
    """

    CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
           "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
           "frame-ancestors 'none'")

    def initialize(self, ctx: AppContext, path: str, default_filename: Optional[str] = None) -> None:
        self.ctx = ctx
        super().initialize(path=path, default_filename=default_filename)

    def set_default_headers(self) -> None:
        for name, value in SECURITY_HEADERS.items():
            self.set_header(name, value)
        self.set_header("Content-Security-Policy", self.CSP)

    def parse_url_path(self, url_path: str) -> str:
        if any(ord(ch) < 0x20 or ch in "\\\x7f" for ch in url_path):
            raise tornado.web.HTTPError(404)
        return super().parse_url_path(url_path)

    def set_extra_headers(self, path: str) -> None:
        self.set_header("Cache-Control", "no-cache")
        if os.path.basename(path) == "index.html":
            self._remember_token()

    def _remember_token(self) -> None:
        query = self.request.query_arguments.get(contract.TOKEN_QUERY_PARAM)
        if not query:
            return
        token = query[-1].decode("utf-8", "surrogateescape")
        if self.ctx.tokens.enabled and self.ctx.tokens.access(token) > Access.NONE:
            self.set_cookie(
                contract.TOKEN_COOKIE, token, path=self.ctx.settings.base_path or "/",
                httponly=True, samesite="Strict", secure=self.request.protocol == "https",
            )

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        if status_code == 405:
            self.set_header("Allow", allowed_methods(self))
        self.set_header("Content-Type", "application/json")
        self.finish({"error": "no such file" if status_code == 404 else self._reason.lower()})
