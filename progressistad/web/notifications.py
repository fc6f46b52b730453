"""GET /notifications and POST /notifications/test: what the notifier sent, and a test message."""

from __future__ import annotations

from typing import Any, Awaitable

from progressistad.alerts import Alerts, UnknownRoute
from progressistad.web.auth import Access
from progressistad.web.base import ApiError, ApiHandler


class NotificationsHandler(ApiHandler):
    """GET /notifications: `{"routes": [...], "deliveries": [...]}`, the deliveries under way
    (newest first) then the last finished ones: id, route, event, tasks, result, attempts, error."""

    access = {"GET": Access.READ}

    async def get(self) -> None:
        alerts = notifier(self)
        deliveries = await shared_store(self, alerts.deliveries())
        routes = [{"name": route.name, "events": sorted(route.events)}
                  for route in alerts.config.routes]
        self.write_json({"routes": routes, "deliveries": deliveries})


class NotificationTestHandler(ApiHandler):
    """POST /notifications/test?route=NAME: send one test message through the route and answer
    how it went (`result` sent or failed, or queued/retrying when the receiver is slow to
    answer); 404 for a route the file does not have."""

    async def post(self) -> None:
        alerts = notifier(self)
        name = self.get_query_argument("route", "").strip()
        if not name:
            raise ApiError(400, "which route? POST /notifications/test?route=NAME",
                           routes=[route.name for route in alerts.config.routes])
        try:
            record = await shared_store(self, alerts.send_test(name))
        except UnknownRoute:
            raise ApiError(404, "no such notification route", route=name[:64],
                           routes=[route.name for route in alerts.config.routes]) from None
        self.write_json(record)


def notifier(handler: ApiHandler) -> Alerts:
    alerts = handler.ctx.alerts
    if alerts is None:
        raise ApiError(404, "this daemon sends no notifications")
    return alerts


async def shared_store(handler: ApiHandler, awaitable: Awaitable[Any]) -> Any:
    """Await a notifier call; a shared queue out of reach answers 503 with Retry-After."""
    try:
        return await awaitable
    except UnknownRoute:
        raise
    except Exception as exc:  # Redis away: the queue and the log live there
        reason = str(exc) or type(exc).__name__
        raise ApiError(503, f"the notification queue cannot be read: {reason}",
                       headers=handler.retry_after()) from None
