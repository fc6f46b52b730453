"""The services a running daemon shares with its handlers, built once and injected."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Dict, List, NamedTuple, Optional

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
    from progressistad.history.figures import JobFigures
    from progressistad.history.service import History

HealthCheck = Callable[[], Dict[str, Any]]
"""Reports one part's state; a report with `"ok": False` makes the daemon degraded."""


class HealthPart(NamedTuple):
    """One part /health reports on, and what its fault means for the answer."""

    check: HealthCheck
    essential: bool
    """A fault of an essential part (the task store, its state file, Redis) answers 503, so a
    proxy sends clients elsewhere; any other part's (the history, notifications) answers 200,
    "degraded": ingest still works."""


class Health(NamedTuple):
    report: Dict[str, Any]
    code: int


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
        self.health_parts: Dict[str, HealthPart] = {}
        self.history: Optional["History"] = None
        """The run history (`progressistad.history`), None when it is off."""
        self.job_figures: Optional["JobFigures"] = None
        self.alerts: Optional["Alerts"] = None
        """Notifications (`progressistad.alerts`): /notifications, /metrics and /health."""
        self.apply_settings(settings)

    def add_health_check(self, name: str, check: HealthCheck, essential: bool) -> None:
        """Report `check` in /health under `name` (see `HealthPart` for `essential`)."""
        self.health_parts[name] = HealthPart(check, essential)

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
        if self.history is not None:
            self.history.reconfigure(retention_days=settings.history_retention_days,
                                     overdue_factor=settings.overdue_factor)

    def health(self) -> Health:
        """`{"status": "ok"|"degraded", "tasks": N, ...}` with each part's report, and the
        answer's status code: 503 when an essential part fails, else 200."""
        code = 200
        report: Dict[str, Any] = {
            "status": "ok",
            "tasks": len(self.service.store),
            "dashboards": len(self.hub),
            "version": __version__,
            "uptime": round(self._clock() - self.started_at, 3),
        }
        failing = []
        for name, part in self.health_parts.items():
            part_report = report[name] = part.check()
            if not part_report.get("ok", True):
                failing.append(name)
                if part.essential:
                    code = 503
        if failing:
            report["status"] = "degraded"
            report["failing"] = failing
        return Health(report, code)

    async def metric_families(self) -> List[prom.Family]:
        families = prom.collect(
            counts_by_status=self.service.store.counts_by_status(),
            events_accepted=self.service.events_accepted,
            metrics=self.metrics,
            dashboards=len(self.hub),
            hub_stats=self.hub.stats,
            uptime=self._clock() - self.started_at,
            telemetry_held=self.service.store.telemetry_held(),
            telemetry_trimmed=self.service.store.telemetry_trimmed,
        )
        if self.history is not None:
            figures = await self.job_figures.current() if self.job_figures is not None else None
            families += prom.history_families(self.history.health(), figures)
        if self.alerts is not None:
            families += prom.notification_families(self.alerts.stats(), await self.alerts.queued())
        return families


def sweep_policy(settings: Settings) -> SweepPolicy:
    return SweepPolicy(
        retention_seconds=settings.retention_seconds,
        stale_seconds=settings.stale_seconds,
        max_task_age=settings.max_task_age,
        stale_factor=settings.stale_factor,
        stale_min_seconds=settings.stale_min_seconds,
    )
