"""The routing table: every URL the daemon answers, and the handler behind it."""

from __future__ import annotations

from typing import List

import tornado.web

from progressistad.web import contractjs
from progressistad.web.context import AppContext
from progressistad.web.dashboard import ContractHandler, DashboardHandler, RootHandler
from progressistad.web.history import HistoryHandler, HistoryJobsHandler
from progressistad.web.info import HealthHandler, MetricsHandler, OpenApiHandler
from progressistad.web.notifications import NotificationTestHandler, NotificationsHandler
from progressistad.web.progress import ProgressHandler
from progressistad.web.tasks import TaskHandler, TaskLogHandler, TaskSeriesHandler, TasksHandler
from progressistad.web.websocket import DashboardSocket


def routes(ctx: AppContext, static_path: str) -> List[tornado.web.URLSpec]:
    """The URL specs under --base-path; any other path is NotFoundHandler's (see app.py)."""
    base = ctx.settings.base_path
    deps = {"ctx": ctx}
    return [
        tornado.web.url(base + r"/progress", ProgressHandler, deps),
        tornado.web.url(base + r"/tasks", TasksHandler, deps),
        # Before /tasks/(.+), matched on the path as sent: a task id holding `/` comes
        # percent-encoded (SPEC section 2), so one ending in /log is still a task's own path.
        tornado.web.url(base + r"/tasks/(.+)/log", TaskLogHandler, deps),
        tornado.web.url(base + r"/tasks/(.+)/series", TaskSeriesHandler, deps),
        tornado.web.url(base + r"/tasks/(.+)", TaskHandler, deps),
        tornado.web.url(base + r"/history", HistoryHandler, deps),
        tornado.web.url(base + r"/history/jobs", HistoryJobsHandler, deps),
        tornado.web.url(base + r"/health", HealthHandler, deps),
        tornado.web.url(base + r"/metrics", MetricsHandler, deps),
        tornado.web.url(base + r"/openapi\.json", OpenApiHandler, deps),
        tornado.web.url(base + r"/notifications", NotificationsHandler, deps),
        tornado.web.url(base + r"/notifications/test", NotificationTestHandler, deps),
        tornado.web.url(base + r"/ws", DashboardSocket, deps),
        # Before the files: the contract module is made from contract.py, not read from disk.
        tornado.web.url(base + r"/static/contract\.js", ContractHandler,
                        {"ctx": ctx, "source": contractjs.source(overrides={
                            "WS_HEARTBEAT_SECONDS": ctx.settings.ws_heartbeat_interval})}),
        tornado.web.url(base + r"/static/(.*)", DashboardHandler,
                        {"ctx": ctx, "path": static_path, "default_filename": "index.html"}),
        tornado.web.url(base + r"/(favicon\.ico)", DashboardHandler,
                        {"ctx": ctx, "path": static_path}),
        tornado.web.url(base + r"/?", RootHandler, deps),
    ]
