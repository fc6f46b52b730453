"""The generic JSON webhook: the versioned body of `messages.Message.body`, POSTed."""

from __future__ import annotations

import json

from progressistad.alerts.messages import Message
from progressistad.alerts.routes import Route
from progressistad.alerts.sinks import Outbound, http


class WebhookSink:
    """POST the webhook body; a route's token goes in `Authorization: Bearer`."""

    def __init__(self, route: Route, out: Outbound) -> None:
        self._url = route.url
        self._out = out
        self._headers = {"Content-Type": "application/json"}
        if route.token:
            self._headers["Authorization"] = f"Bearer {route.token}"

    async def send(self, message: Message, sent_at: float) -> None:
        body = message.body(self._out.dashboard_url, sent_at)
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        headers = dict(self._headers, **{"Idempotency-Key": message.id})
        await http.post(self._out, self._url, data, headers, sent_at)
