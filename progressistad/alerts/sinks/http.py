"""One POST to a receiver, judged by its status line; what the receiver answers costs little.

Redirects are not followed, connecting and the whole request share one
timeout, the response body is discarded as it streams and capped (a larger
one ends the connection), and compressed answers are never inflated. Once the
status line has arrived it decides the outcome, whatever the body does next.
"""

from __future__ import annotations

import asyncio
import email.utils
from typing import List, Mapping, Optional

from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.simple_httpclient import HTTPTimeoutError, SimpleAsyncHTTPClient

from progressistad.alerts.sinks import Outbound, SendFailed

MAX_RESPONSE_BYTES = 64 * 1024
"""Most of a response body read (and thrown away) before the connection is dropped."""
MAX_BUFFER_BYTES = 256 * 1024
"""Read buffer of one connection: bounds a body that has no length and never ends."""
MAX_CLIENTS = 16
"""Requests in flight at once; delivery sends one per route at a time."""


def client() -> AsyncHTTPClient:
    """A client of its own (never the shared instance): its limits are the notifier's."""
    return SimpleAsyncHTTPClient(force_instance=True, max_clients=MAX_CLIENTS,
                                 max_buffer_size=MAX_BUFFER_BYTES,
                                 max_body_size=MAX_RESPONSE_BYTES)


async def post(out: Outbound, url: str, body: bytes, headers: Mapping[str, str],
               sent_at: float) -> None:
    """POST `body` to `url`; return on 2xx, else raise SendFailed (retry on 5xx, 429, errors)."""
    status: List[int] = []
    retry_after: List[str] = []

    def on_header(line: str) -> None:
        if line.startswith("HTTP/"):
            fields = line.split(None, 2)
            if len(fields) >= 2 and fields[1].isdigit() and not fields[1].startswith("1"):
                status[:] = [int(fields[1])]
        elif line.lower().startswith("retry-after:"):
            retry_after[:] = [line.split(":", 1)[1].strip()]

    request = HTTPRequest(
        url, method="POST", body=body, headers=dict(headers), user_agent=out.user_agent,
        follow_redirects=False, connect_timeout=out.timeout, request_timeout=out.timeout,
        decompress_response=False, header_callback=on_header,
        streaming_callback=lambda chunk: None,
    )
    fetch = out.http.fetch(request, raise_error=False)
    fetch.add_done_callback(_consume)
    try:
        # Shielded: a stop that cancels this attempt leaves the request to end by itself,
        # instead of Tornado logging an error when its answer meets a cancelled future.
        await asyncio.shield(fetch)
    except Exception as exc:
        if not status:
            raise SendFailed(reason(exc), retry=True) from None
    if not status:
        raise SendFailed("no status line in the answer", retry=True)
    judge(status[0], retry_after[0] if retry_after else None, sent_at)


def _consume(future: "asyncio.Future[object]") -> None:
    """Retrieve the outcome of a request nobody may await any more (after a stop)."""
    if not future.cancelled():
        future.exception()


def judge(code: int, retry_after: Optional[str], now: float) -> None:
    """Raise SendFailed unless `code` says the receiver took the message."""
    if 200 <= code < 300:
        return
    if code == 429 or 500 <= code < 600:
        raise SendFailed(f"HTTP {code}", retry=True,
                         retry_after=parse_retry_after(retry_after, now))
    if 300 <= code < 400:
        raise SendFailed(f"HTTP {code}: redirect not followed", retry=False)
    raise SendFailed(f"HTTP {code}", retry=False)


def parse_retry_after(value: Optional[str], now: float) -> Optional[float]:
    """Seconds a Retry-After header asks to wait (a number or an HTTP date), or None."""
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - now) if when is not None else None


def reason(exc: BaseException) -> str:
    """Why a request failed, in a few words that never hold its URL."""
    if isinstance(exc, HTTPTimeoutError):
        return "timeout"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    message = getattr(exc, "message", None) or str(exc)
    return message or type(exc).__name__
