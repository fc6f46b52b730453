"""What the daemon says about itself: GET /health, /metrics and /openapi.json."""

from __future__ import annotations

from progressistad.web import metrics as prom, openapi
from progressistad.web.auth import Access
from progressistad.web.base import ApiHandler


class HealthHandler(ApiHandler):
    """GET /health (no token): `{"status": "ok", "tasks": N, ...}`, each part's report under its
    name; "degraded" with the failing parts named in "failing", 503 when one is essential (the
    task store, its state file, Redis: ingest is at risk), else 200 (the history, notifications:
    ingest works)."""

    access = {"GET": Access.NONE}

    def get(self) -> None:
        report, code = self.ctx.health()
        report["auth"] = {"required": self.ctx.tokens.enabled, "access": self.granted.name.lower()}
        self.write_json(report, code)


class MetricsHandler(ApiHandler):
    """GET /metrics: Prometheus text exposition."""

    access = {"GET": Access.READ}

    async def get(self) -> None:
        families = await self.ctx.metric_families()
        self.set_header("Content-Type", prom.CONTENT_TYPE)
        self.finish(prom.render(families))


class OpenApiHandler(ApiHandler):
    """GET /openapi.json (no token): the OpenAPI 3 description of this API."""

    access = {"GET": Access.NONE}

    def get(self) -> None:
        self.write_json(openapi.document(self.ctx.settings.base_path))
