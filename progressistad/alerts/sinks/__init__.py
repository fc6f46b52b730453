"""Sinks send one message to one route's receiver; `make_sink` picks one by the route's scheme.

Every sink raises `SendFailed` saying whether another attempt may succeed.
HTTP sinks use Tornado's own client with redirects off, a timeout and a cap
on what a response may cost; mail and Apprise run on a worker thread.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Callable, Optional, Protocol, TypeVar

from tornado.httpclient import AsyncHTTPClient

from progressistad.alerts import routes
from progressistad.alerts.messages import Message
from progressistad.alerts.routes import Route, SmtpSettings

TIMEOUT = 10.0
"""Seconds one attempt may take, connecting included (SPEC section 13)."""


class SendFailed(Exception):
    """An attempt failed; `retry` says whether a later one may succeed (timeouts, 5xx, 429)."""

    def __init__(self, reason: str, retry: bool, retry_after: Optional[float] = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry = retry
        self.retry_after = retry_after


class Sink(Protocol):
    async def send(self, message: Message, sent_at: float) -> None:
        """Deliver `message` once; raise SendFailed when it did not arrive."""


@dataclass(frozen=True)
class Outbound:
    """What every sink shares: the HTTP client, the worker threads, the daemon's address."""

    http: AsyncHTTPClient
    executor: Executor
    dashboard_url: Optional[str]
    hostname: str
    user_agent: str
    timeout: float = TIMEOUT


T = TypeVar("T")


async def off_loop(out: Outbound, work: Callable[[], T]) -> T:
    """Run blocking `work` on a worker thread; SendFailed (retry) once the timeout has passed."""
    # A thread cannot be stopped: the work's own socket timeouts end it soon after.
    future = asyncio.get_running_loop().run_in_executor(out.executor, work)
    try:
        return await asyncio.wait_for(future, out.timeout)
    except asyncio.TimeoutError:
        raise SendFailed("timeout", retry=True) from None


def make_sink(route: Route, smtp: SmtpSettings, out: Outbound) -> Sink:
    """The sink that sends to `route` (Apprise imported only for a scheme that needs it)."""
    if route.sink == routes.WEBHOOK:
        from progressistad.alerts.sinks.webhook import WebhookSink
        return WebhookSink(route, out)
    if route.sink == routes.NTFY:
        from progressistad.alerts.sinks.ntfy import NtfySink
        return NtfySink(route, out)
    if route.sink in (routes.SLACK, routes.DISCORD):
        from progressistad.alerts.sinks.chat import ChatSink
        return ChatSink(route, out)
    if route.sink == routes.MAIL:
        from progressistad.alerts.sinks.mail import MailSink
        return MailSink(route, smtp, out)
    from progressistad.alerts.sinks.apprise_sink import AppriseSink
    return AppriseSink(route, out)
