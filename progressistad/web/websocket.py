"""WS /ws: live task state for dashboards, as full snapshots or as deltas."""

from __future__ import annotations

from typing import Any, Optional

import tornado.websocket

from progressistad import contract
from progressistad.web.auth import Access
from progressistad.web.context import AppContext
from progressistad.web.handlers import SECURITY_HEADERS, RequestAuth, allowed_methods
from progressistad.web.hub import SendFailed


class DashboardSocket(RequestAuth, tornado.websocket.WebSocketHandler):
    """WS /ws[?protocol=delta]: the snapshot on connect, then coalesced updates.

    Foreign origins are refused at the handshake (403); with tokens configured a
    connection without a valid read token is closed with code 4401.
    """

    def initialize(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.protocol = contract.WS_PROTOCOL_SNAPSHOT
        self._subscribed = False

    async def get(self, *args: Any, **kwargs: Any) -> None:
        """Refuse what is not a WebSocket handshake, or comes from a foreign origin, as JSON."""
        headers = self.request.headers
        if headers.get("Upgrade", "").lower() != "websocket" or \
                "upgrade" not in headers.get("Connection", "").lower():
            self._refuse(400, "this is a WebSocket endpoint: connect with Upgrade: websocket")
            return
        origin = headers.get("Origin") or headers.get("Sec-Websocket-Origin")
        if origin and not self.origin_allowed(origin):
            self._refuse(403, "origin not allowed; add it to --allow-origins")
            return
        await super().get(*args, **kwargs)

    def set_default_headers(self) -> None:
        for name, value in SECURITY_HEADERS.items():
            self.set_header(name, value)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Errors tornado raises itself (a method other than GET) as JSON, like every route."""
        if status_code == 405:
            self.set_header("Allow", allowed_methods(self))
        self.set_header("Content-Type", "application/json")
        self.finish({"error": (self._reason or "error").lower()})

    def _refuse(self, status: int, message: str) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish({"error": message})

    def check_origin(self, origin: str) -> bool:
        return self.origin_allowed(origin)

    def open(self) -> None:
        if self.request_access() < Access.READ:
            self.close(contract.WS_CLOSE_UNAUTHORIZED, "unauthorized")
            return
        requested = self.get_query_argument("protocol", contract.WS_PROTOCOL_SNAPSHOT)
        if requested == contract.WS_PROTOCOL_DELTA:
            self.protocol = contract.WS_PROTOCOL_DELTA
        self.set_nodelay(True)
        self._subscribed = True
        self.ctx.hub.subscribe(self)

    def on_message(self, message: Any) -> None:
        """Dashboards only listen; whatever they send is ignored."""

    def on_close(self) -> None:
        if self._subscribed:
            self.ctx.hub.unsubscribe(self)

    def send(self, message: bytes) -> Any:
        try:
            return self.write_message(message)
        except tornado.websocket.WebSocketClosedError:
            raise SendFailed() from None

    def abort(self, code: int, reason: str) -> None:
        self._subscribed = False
        self.close(code, reason)
        connection = self.ws_connection
        stream: Optional[Any] = getattr(connection, "stream", None)
        if stream is not None:
            stream.close()

    def get_compression_options(self) -> Optional[dict]:
        return None
