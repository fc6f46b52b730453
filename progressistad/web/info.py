"""What the daemon says about itself: GET /health, /metrics and /openapi.json."""

from __future__ import annotations

from progressistad.web import metrics as prom, openapi
from progressistad.web.auth import Access
from progressistad.web.base import ApiHandler
from progressistad.web.context import health_status


class HealthHandler(ApiHandler):
    """GET /health (no token): `{"status": "ok", "tasks": N, ...}`; `"degraded"` with the failing
    parts named; 503 when one of them is a part ingest needs (the task store, its state file)."""

    access = {"GET": Access.NONE}

    def get(self) -> None:
        report = self.ctx.health()
        report["auth"] = {"required": self.ctx.tokens.enabled, "access": self.granted.name.lower()}
        self.write_json(report, health_status(report))


class MetricsHandler(ApiHandler):
    """GET /metrics: Prometheus text exposition."""

    access = {"GET": Access.READ}

    async def get(self) -> None:
        families = self.ctx.metric_families()
        alerts = self.ctx.alerts
        if alerts is not None:
            families += prom.notification_families(alerts.stats(), await alerts.queued())
        self.set_header("Content-Type", prom.CONTENT_TYPE)
        self.finish(prom.render(families))


class OpenApiHandler(ApiHandler):
    """GET /openapi.json (no token): the OpenAPI 3 description of this API."""

    access = {"GET": Access.NONE}

    def get(self) -> None:
        self.write_json(openapi.document(self.ctx.settings.base_path))
