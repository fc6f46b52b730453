"""WS /ws: live task state for dashboards, as full snapshots or as deltas."""

from __future__ import annotations

import struct
from typing import Any, Optional

import tornado.iostream
import tornado.websocket

from progressistad import contract
from progressistad.web.auth import Access
from progressistad.web.base import Answers, ApiError, RequestAuth
from progressistad.web.context import AppContext
from progressistad.web.hub import SendFailed


COPIED_FRAME_BYTES = 16384
"""Up to this size a message is copied behind its header and written at once; a larger one is
written after it, uncopied."""


def text_frame_header(size: int) -> bytes:
    """The header of an unmasked, uncompressed WebSocket text frame of `size` bytes (RFC 6455
    section 5.2)."""
    if size < 126:
        return struct.pack("!BB", 0x81, size)
    if size <= 0xFFFF:
        return struct.pack("!BBH", 0x81, 126, size)
    return struct.pack("!BBQ", 0x81, 127, size)


class DashboardSocket(Answers, RequestAuth, tornado.websocket.WebSocketHandler):
    """WS /ws[?protocol=delta]: the snapshot on connect, then coalesced updates.

    A request that is no WebSocket handshake is refused with 400 (426 for a version
    other than 13), a foreign origin with 403, all as JSON; with tokens configured a
    connection without a valid read token is closed with code 4401.
    """

    def initialize(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.protocol = contract.WS_PROTOCOL_SNAPSHOT
        self._subscribed = False

    def prepare(self) -> None:
        # Refused here rather than by tornado, which answers such requests in plain text (and
        # here, not in a `get` of ours: its frame would be held for the connection's life).
        refusal = self.handshake_refusal() if self.request.method == "GET" else None
        if refusal is not None:
            raise refusal

    def handshake_refusal(self) -> Optional[ApiError]:
        """Why this request cannot become a dashboard's WebSocket, or None."""
        headers = self.request.headers
        connection = {part.strip().lower() for part in headers.get("Connection", "").split(",")}
        if headers.get("Upgrade", "").lower() != "websocket" or "upgrade" not in connection:
            return ApiError(400, "this is a WebSocket endpoint: connect with Upgrade: websocket")
        if not headers.get("Host") or not headers.get("Sec-WebSocket-Key"):
            return ApiError(400, "a WebSocket handshake needs Host and Sec-WebSocket-Key headers")
        origin = headers.get("Origin") or headers.get("Sec-Websocket-Origin")
        if origin and not self.origin_allowed(origin):
            return ApiError(403, "origin not allowed; add it to --allow-origins")
        return None

    def get_websocket_protocol(self) -> Any:
        protocol = super().get_websocket_protocol()
        if protocol is None:
            raise ApiError(426, "unsupported WebSocket version: use 13",
                           headers={"Sec-WebSocket-Version": "13"})
        return protocol

    def check_origin(self, origin: str) -> bool:
        return self.origin_allowed(origin)

    def open(self) -> None:
        if self.request_access() < Access.READ:
            self.close(contract.WS_CLOSE_UNAUTHORIZED, "unauthorized")
            return
        requested = self.get_query_argument(contract.WS_PROTOCOL_PARAM, contract.WS_PROTOCOL_SNAPSHOT)
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
        """Write `message` as a frame straight to the stream: the hub sends one message to every
        watcher of a protocol, and the stream keeps a reference to it rather than a copy
        (tornado's `write_message` copies it into a frame per connection)."""
        connection = self.ws_connection
        if connection is None or connection.is_closing():
            raise SendFailed()
        header = text_frame_header(len(message))
        try:
            if len(message) <= COPIED_FRAME_BYTES:
                return connection.stream.write(header + message)
            connection.stream.write(header)
            return connection.stream.write(message)
        except tornado.iostream.StreamClosedError:
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
