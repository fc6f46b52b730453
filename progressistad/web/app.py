"""The application factory: the routing table of routes.py, tornado's settings, the access log."""

from __future__ import annotations

import logging
import os
from typing import Optional

import tornado.web

from progressistad.web.auth import redact_uri
from progressistad.web.base import NotFoundHandler
from progressistad.web.context import AppContext
from progressistad.web.routes import routes

access_log = logging.getLogger("progressistad.access")

WS_MAX_INCOMING_BYTES = 4096
"""Dashboards only listen: anything larger from them is a misbehaving peer."""


def find_static_path(configured: Optional[str] = None) -> str:
    """The dashboard directory: `configured`, the installed copy, or the source checkout's."""
    if configured:
        return configured
    package_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for candidate in (
        os.path.join(package_dir, "static"),
        os.path.join(os.path.dirname(package_dir), "static"),
    ):
        if os.path.isfile(os.path.join(candidate, "index.html")):
            return candidate
    raise FileNotFoundError(f"dashboard files not found next to {package_dir}; use --static-path")


def ping_timeout(interval: float) -> float:
    """Seconds without a pong before a WebSocket peer is closed as dead.

    Tornado before 6.5 checks only when it sends the next ping, so it needs more than one
    period; 6.5 and later refuse more than one period (warning at every start).
    """
    return interval if tornado.version_info >= (6, 5) else 3 * interval


def make_app(ctx: AppContext, static_path: Optional[str] = None) -> tornado.web.Application:
    settings = ctx.settings
    return tornado.web.Application(
        routes(ctx, find_static_path(static_path or settings.static_path)),
        default_handler_class=NotFoundHandler,
        default_handler_args={"ctx": ctx},
        log_function=log_request,
        websocket_ping_interval=settings.ws_ping_interval,
        websocket_ping_timeout=ping_timeout(settings.ws_ping_interval),
        websocket_max_message_size=WS_MAX_INCOMING_BYTES,
        static_hash_cache=True,
    )


def log_request(handler: tornado.web.RequestHandler) -> None:
    """Access log line with any token in the query string redacted; successes at debug."""
    status = handler.get_status()
    if status < 400:
        level = logging.DEBUG
    elif status < 500:
        level = logging.WARNING
    else:
        level = logging.ERROR
    if not access_log.isEnabledFor(level):
        return
    request = handler.request
    access_log.log(
        level, "%d %s %s (%s) %.2fms", status, request.method, redact_uri(request.uri or ""),
        request.remote_ip, 1000.0 * request.request_time(),
    )
