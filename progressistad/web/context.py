"""The services a running daemon shares with its handlers, built once and injected."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional

from progressistad import __version__
from progressistad.web import metrics as prom
from progressistad.web.auth import TokenSet
from progressistad.daemon.config import Settings
from progressistad.web.hub import Hub
from progressistad.web.metrics import Metrics
from progressistad.service import TaskService
from progressistad.core.store import SweepPolicy

if TYPE_CHECKING:
    from progressistad.alerts import Alerts

HealthCheck = Callable[[], Dict[str, Any]]
"""Reports one part's state; a report with `"ok": False` makes the daemon degraded."""
SERVING_DESPITE = frozenset(("notifications", "history"))
"""Parts whose fault leaves ingest working: /health says degraded, naming them, with 200, so
that a proxy keeps the daemon in rotation; a fault of any other part answers 503."""


class AppContext:
    """Settings, tokens, task service, hub and metrics of one daemon.

    `settings`, `tokens` and `allow_origins` are replaced as a whole on reload;
    handlers read them per request.
    """

    def __init__(
        self,
        settings: Settings,
        service: TaskService,
        hub: Hub,
        clock: Callable[[], float],
        metrics: Metrics,
    ) -> None:
        self.service = service
        self.hub = hub
        self.metrics = metrics
        self._clock = clock
        self.started_at = clock()
        self.health_checks: Dict[str, HealthCheck] = {}
        self.alerts: Optional["Alerts"] = None
        """Notifications (`progressistad.alerts`): /notifications, /metrics and /health."""
        self.apply_settings(settings)

    def apply_settings(self, settings: Settings) -> None:
        self.settings = settings
        self.tokens = TokenSet(write=settings.api_tokens, read=settings.read_tokens)
        self.allow_origins = frozenset(settings.allow_origins)
        self.hub.interval = settings.broadcast_interval
        self.hub.stall_timeout = settings.ws_stall_timeout
        self.service.store.max_tasks = settings.max_tasks
        # A smaller budget is met by the next sample, which announces the tails it trims.
        self.service.store.telemetry_budget_bytes = settings.telemetry_budget_bytes
        self.service.policy = sweep_policy(settings)

    def health(self) -> Dict[str, Any]:
        """`{"status": "ok"|"degraded", "tasks": N, ...}` with each registered check's report."""
        report: Dict[str, Any] = {
            "status": "ok",
            "tasks": len(self.service.store),
            "dashboards": len(self.hub),
            "version": __version__,
            "uptime": round(self._clock() - self.started_at, 3),
        }
        failing = []
        for name, check in self.health_checks.items():
            part = check()
            report[name] = part
            if not part.get("ok", True):
                failing.append(name)
        if failing:
            report["status"] = "degraded"
            report["failing"] = failing
        return report

    def metric_families(self) -> List[prom.Family]:
        return prom.collect(
            counts_by_status=self.service.store.counts_by_status(),
            events_accepted=self.service.events_accepted,
            metrics=self.metrics,
            dashboards=len(self.hub),
            hub_stats=self.hub.stats,
            uptime=self._clock() - self.started_at,
            telemetry_held=self.service.store.telemetry_held(),
            telemetry_trimmed=self.service.store.telemetry_trimmed,
        )


def health_status(report: Mapping[str, Any]) -> int:
    """The HTTP status of a /health report: 503 once a part ingest needs is failing."""
    return 503 if set(report.get("failing", ())) - SERVING_DESPITE else 200


def sweep_policy(settings: Settings) -> SweepPolicy:
    return SweepPolicy(
        retention_seconds=settings.retention_seconds,
        stale_seconds=settings.stale_seconds,
        max_task_age=settings.max_task_age,
        stale_factor=settings.stale_factor,
        stale_min_seconds=settings.stale_min_seconds,
    )
