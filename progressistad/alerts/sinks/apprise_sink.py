"""Any scheme the built-in sinks do not handle, through Apprise (optional) on a worker thread."""

from __future__ import annotations

from progressistad.alerts.messages import Message
from progressistad.alerts.routes import Route
from progressistad.alerts.sinks import Outbound, SendFailed, off_loop


class AppriseSink:
    def __init__(self, route: Route, out: Outbound) -> None:
        import apprise

        self._apprise = apprise.Apprise()
        self._apprise.add(route.url)
        self._out = out

    async def send(self, message: Message, sent_at: float) -> None:
        link = f"\n{self._out.dashboard_url}" if self._out.dashboard_url else ""
        body = message.text + link
        sent = await off_loop(self._out, lambda: self._apprise.notify(body=body,
                                                                      title=message.title))
        if not sent:
            raise SendFailed("apprise could not send it (its log says why)", retry=True)
