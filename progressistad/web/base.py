"""What every handler shares: credentials and origins, security headers, JSON errors, deny by default."""

from __future__ import annotations

from http import HTTPStatus
from http.client import responses
from typing import Any, Awaitable, Dict, FrozenSet, Mapping, Optional, Sequence
from urllib.parse import urlsplit

import tornado.escape
import tornado.web

from progressistad import contract
from progressistad.core.schemas import InvalidInput, TaskQuery
from progressistad.service import StoreUnavailable
from progressistad.web.auth import Access, bearer_token
from progressistad.web.context import AppContext

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
CORS_METHODS = "GET, POST, DELETE, OPTIONS"
CORS_HEADERS = "Authorization, Content-Type"
CORS_MAX_AGE = "600"


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


def read_only() -> ApiError:
    return ApiError(403, "this token may only read")


def error_body(status: int, error: Optional[BaseException] = None) -> Dict[str, Any]:
    """The body of every error answer, `{"error": message, ...}`; never a traceback."""
    if isinstance(error, ApiError):
        return {"error": error.message, **error.details}
    if isinstance(error, tornado.web.HTTPError):
        if error.log_message and status < 500:
            return {"error": error.log_message % error.args}  # tornado doubles a bare %
        if error.reason:
            return {"error": error.reason.lower()}
    return {"error": responses.get(status, "error").lower()}


def allowed_methods(handler: tornado.web.RequestHandler) -> str:
    """The `Allow` header of a 405 (RFC 9110): the methods this handler implements."""
    base = tornado.web.RequestHandler
    return ", ".join(method for method in handler.SUPPORTED_METHODS
                     if getattr(type(handler), method.lower(), None)
                     is not getattr(base, method.lower(), None))


class Answers:
    """Mixin of every handler: the security headers on every answer, every error as JSON."""

    default_headers: Mapping[str, str] = {}
    """Headers this kind of handler sends besides SECURITY_HEADERS (errors included)."""

    def set_default_headers(self: Any) -> None:
        for name, value in SECURITY_HEADERS.items():
            self.set_header(name, value)
        for name, value in self.default_headers.items():
            self.set_header(name, value)

    def write_error(self: Any, status_code: int, **kwargs: Any) -> None:
        """`error_body` as JSON, with the error's own headers and, on a 405, `Allow`."""
        error = kwargs.get("exc_info", (None, None, None))[1]
        if status_code == 405:
            self.set_header("Allow", allowed_methods(self))
        if isinstance(error, ApiError):
            for name, value in error.headers.items():
                self.set_header(name, value)
        self.set_header("Content-Type", "application/json")
        self.finish(error_body(status_code, error))


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
        if "Cookie" not in self.request.headers:
            return None  # tornado would parse, and keep, an empty jar
        cookie = self.request.cookies.get(contract.TOKEN_COOKIE)
        return cookie.value if cookie is not None else None

    def request_access(self) -> Access:
        tokens = self.ctx.tokens
        return tokens.access(self.request_token() if tokens.enabled else None)

    def origin_allowed(self, origin: str) -> bool:
        """Same origin as the request's Host, or listed in --allow-origins."""
        if origin.rstrip("/") in self.ctx.allow_origins:
            return True
        host = self.request.headers.get("Host", "")
        if self.ctx.settings.trust_proxy:
            host = self.request.headers.get("X-Forwarded-Host", host).split(",")[0].strip()
        return bool(host) and urlsplit(origin).netloc.lower() == host.lower()


def require(required: Access, granted: Access) -> None:
    """Deny unless `granted` covers `required`: 403 for a read-only token, else 401."""
    if granted >= required:
        return
    raise read_only() if granted == Access.READ else unauthorized()


class ApiHandler(Answers, RequestAuth, tornado.web.RequestHandler):
    """Base of the JSON API: denies by default; CORS for --allow-origins; never cached.

    A handler opts out explicitly, method by method, in `access` and `body_credentials`.
    """

    access: Mapping[str, Access] = {}
    """What each method requires; a method not listed requires write access."""
    body_credentials: FrozenSet[str] = frozenset()
    """Methods whose request may carry its credential in the body: one that comes with none
    elsewhere reaches the method, which settles access once it has read the body."""
    default_headers = {"Cache-Control": "no-store"}

    def initialize(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.granted = Access.NONE

    def prepare(self) -> None:
        self.allow_listed_origin()
        if self.request.method == "OPTIONS":
            return
        self.granted = self.request_access()
        if self.granted == Access.NONE and self.request.method in self.body_credentials:
            return
        require(self.access.get(self.request.method, Access.WRITE), self.granted)

    def allow_listed_origin(self) -> None:
        """CORS: echo the Origin when it is on --allow-origins."""
        origin = self.request.headers.get("Origin")
        if origin and origin.rstrip("/") in self.ctx.allow_origins:
            self.set_header("Access-Control-Allow-Origin", origin)
            self.set_header("Vary", "Origin")

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
        self.finish(payload if not isinstance(payload, (list, str))
                    else tornado.escape.json_encode(payload))

    def write_json_text(self, text: bytes) -> None:
        """Answer 200 with `text`, JSON already encoded, written after the headers rather than
        with them (tornado copies the body of a first write behind the headers)."""
        self.set_header("Content-Type", "application/json")
        self.set_header("Content-Length", len(text))
        self.flush()
        self.request.connection.write(text)
        self.finish()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.allow_listed_origin()  # send_error cleared what prepare set
        super().write_error(status_code, **kwargs)

    def rejected(self, error: InvalidInput, reason: str, events: int = 1) -> ApiError:
        """Count a rejection and return the 400 that says what was wrong."""
        self.ctx.metrics.reject(reason, events)
        return ApiError(400, error.message, **error.details)

    def retry_after(self) -> Dict[str, str]:
        """The Retry-After of a 503: the next cleanup may make room or find the store back."""
        return {"Retry-After": str(max(1, round(self.ctx.settings.cleanup_interval)))}

    async def call(self, awaitable: Awaitable[Any]) -> Any:
        """Await a task-service call; a shared store out of reach answers 503 with Retry-After."""
        try:
            return await awaitable
        except StoreUnavailable as error:
            raise ApiError(503, str(error), headers=self.retry_after()) from None

    def parse_query(self, allowed: Sequence[str]) -> TaskQuery:
        try:
            return TaskQuery.parse(self.request.query_arguments, allowed)
        except InvalidInput as error:
            raise ApiError(400, error.message, **error.details) from None


class NotFoundHandler(ApiHandler):
    """Any other path: 404 as JSON, whatever the credentials."""

    def prepare(self) -> None:
        raise ApiError(404, "no such path", path=self.request.path[:256])
