"""ntfy's publish API: the text as the body, title, priority, tags and click as headers.

`ntfy://host/topic` publishes over HTTP, `ntfys://host/topic` over HTTPS; a
route's token is sent as a bearer token, a URL's user and password as Basic.
Header values outside ASCII are RFC 2047 encoded, which ntfy decodes.
"""

from __future__ import annotations

import base64
from email.header import Header
from typing import Dict
from urllib.parse import unquote, urlsplit, urlunsplit

from progressistad.alerts.messages import Message
from progressistad.alerts.routes import Route
from progressistad.alerts.sinks import Outbound, http


class NtfySink:
    def __init__(self, route: Route, out: Outbound) -> None:
        parts = urlsplit(route.url)
        scheme = "https" if parts.scheme.lower() == "ntfys" else "http"
        host = parts.hostname or ""
        netloc = (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port else "")
        self._url = urlunsplit((scheme, netloc, parts.path, parts.query, ""))
        self._out = out
        self._headers: Dict[str, str] = {"Content-Type": "text/plain; charset=utf-8"}
        if route.token:
            self._headers["Authorization"] = f"Bearer {route.token}"
        elif parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            self._headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        if route.priority:
            self._headers["Priority"] = route.priority
        if route.tags:
            self._headers["Tags"] = header_value(",".join(route.tags))

    async def send(self, message: Message, sent_at: float) -> None:
        headers = dict(self._headers, Title=header_value(message.title))
        if self._out.dashboard_url:
            headers["Click"] = self._out.dashboard_url
        await http.post(self._out, self._url, message.text.encode("utf-8"), headers, sent_at)


def header_value(text: str) -> str:
    """`text` as is when ASCII, else as an RFC 2047 encoded word; newlines become spaces."""
    text = " ".join(text.split())
    if text.isascii():
        return text
    return Header(text, "utf-8").encode(maxlinelen=10000)
