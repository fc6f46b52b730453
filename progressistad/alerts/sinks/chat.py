"""Slack and Discord incoming webhooks (`slack+https://...`, `discord+https://...`).

Text from tasks is escaped so that a task's description cannot mention
`@everyone` or a channel.
"""

from __future__ import annotations

import json
from typing import Any, Dict

from progressistad.alerts import routes
from progressistad.alerts.messages import Message
from progressistad.alerts.routes import Route
from progressistad.alerts.sinks import Outbound, http

DISCORD_MAX_CHARS = 2000
SLACK_MAX_CHARS = 3000


class ChatSink:
    def __init__(self, route: Route, out: Outbound) -> None:
        self._url = route.url.split("+", 1)[1]
        self._slack = route.sink == routes.SLACK
        self._out = out

    async def send(self, message: Message, sent_at: float) -> None:
        payload = (slack_payload if self._slack else discord_payload)(
            message, self._out.dashboard_url)
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        await http.post(self._out, self._url, data, {"Content-Type": "application/json"}, sent_at)


def slack_payload(message: Message, dashboard_url: Any) -> Dict[str, Any]:
    """Slack's `{"text": ...}` in its mrkdwn, with &, < and > escaped as Slack asks."""
    def escape(text: str) -> str:
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    text = f"*{escape(message.title)}*\n{escape(message.text)}"[:SLACK_MAX_CHARS]
    if dashboard_url:
        text += f"\n<{dashboard_url}|Open the dashboard>"
    return {"text": text}


def discord_payload(message: Message, dashboard_url: Any) -> Dict[str, Any]:
    """Discord's `{"content": ...}`, with mentions turned off."""
    tail = f"\n{dashboard_url}" if dashboard_url else ""
    text = f"**{message.title}**\n{message.text}"[:DISCORD_MAX_CHARS - len(tail)] + tail
    return {"content": text, "allowed_mentions": {"parse": []}}
