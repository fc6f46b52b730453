"""Prometheus text exposition (format 0.0.4) of the daemon's counters and gauges.

A handful of families rendered from live objects at scrape time; pure apart
from reading them, so tests call `render` directly.
"""

from __future__ import annotations

import math
import platform
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, List, Mapping, Optional, Tuple

from progressistad import __version__
from progressistad.alerts.queue import DROPPED

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Labels = Tuple[Tuple[str, str], ...]


@dataclass
class Timing:
    """A summary: how many observations and their total seconds."""

    count: int = 0
    total: float = 0.0

    def observe(self, seconds: float) -> None:
        self.count += 1
        self.total += seconds


@dataclass
class ConnectionStats:
    """What the HTTP server counts of its client connections."""

    open: int = 0
    """Connections holding a descriptor, HTTP and WebSocket, draining ones included."""
    limit: int = 0
    accepted: int = 0
    refused: int = 0
    """Answered 503 and closed for being over the limit."""
    accept_pauses: int = 0
    """Times accepting paused for want of file descriptors."""


@dataclass
class Metrics:
    """Counters kept by handlers, timers and the server between scrapes."""

    rejected: Counter = field(default_factory=Counter)
    persist: Timing = field(default_factory=Timing)
    persist_failures: int = 0
    sweep: Timing = field(default_factory=Timing)
    connections: ConnectionStats = field(default_factory=ConnectionStats)

    def reject(self, reason: str, events: int = 1) -> None:
        self.rejected[reason] += events


@dataclass
class Family:
    name: str
    kind: str
    help: str
    samples: List[Tuple[str, Labels, float]] = field(default_factory=list)

    def add(self, value: float, suffix: str = "", **labels: str) -> "Family":
        self.samples.append((suffix, tuple(sorted(labels.items())), value))
        return self

    def add_each(self, label: str, values: Mapping[str, float]) -> "Family":
        """One sample per key of `values`, the key as `label`, in key order."""
        for key, value in sorted(values.items()):
            self.add(value, **{label: key})
        return self


def render(families: Iterable[Family]) -> str:
    lines: List[str] = []
    for family in families:
        lines.append(f"# HELP {family.name} {_escape_help(family.help)}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        for suffix, labels, value in family.samples:
            lines.append(f"{family.name}{suffix}{_labels(labels)} {_number(value)}")
    return "\n".join(lines) + "\n"


def collect(
    *,
    counts_by_status: Mapping[str, int],
    events_accepted: int,
    metrics: Metrics,
    dashboards: int,
    hub_stats,
    uptime: float,
    telemetry_held: Mapping[str, int],
    telemetry_trimmed: Mapping[str, int],
) -> List[Family]:
    """The families /metrics serves, from the live objects they describe."""
    tasks = Family("progressista_tasks", "gauge", "Tasks held, by status.").add_each(
        "status", counts_by_status)
    rejected = Family("progressista_events_rejected_total", "counter",
                      "Events refused, by reason.").add_each("reason", metrics.rejected)
    held = Family("progressista_telemetry_bytes", "gauge",
                  "Estimated bytes of series and log tails held against --telemetry-budget-bytes."
                  ).add_each("kind", telemetry_held)
    trimmed = Family("progressista_telemetry_trimmed_bytes_total", "counter",
                     "Estimated bytes of series and log tails dropped to stay within the budget."
                     ).add_each("kind", telemetry_trimmed)
    connections = metrics.connections
    families = [
        tasks,
        Family("progressista_events_accepted_total", "counter",
               "Events applied to the task store.").add(events_accepted),
        rejected,
        Family("progressista_connections", "gauge",
               "Client connections open, HTTP and WebSocket.").add(connections.open),
        Family("progressista_connections_max", "gauge",
               "Most client connections open at once (--max-connections).").add(connections.limit),
        Family("progressista_connections_accepted_total", "counter",
               "Client connections accepted and served.").add(connections.accepted),
        Family("progressista_connections_refused_total", "counter",
               "Connections answered 503 and closed for being over --max-connections.")
        .add(connections.refused),
        Family("progressista_accept_pauses_total", "counter",
               "Times accepting paused for want of file descriptors.")
        .add(connections.accept_pauses),
        Family("progressista_websocket_clients", "gauge",
               "Dashboards connected over WebSocket.").add(dashboards),
        Family("progressista_broadcast_seconds", "summary",
               "Time spent serializing and sending one coalesced broadcast.")
        .add(hub_stats.flushes, "_count").add(hub_stats.flush_seconds, "_sum"),
        Family("progressista_broadcast_period_seconds", "gauge",
               "Seconds from the last broadcast to the earliest next: --broadcast-interval, or "
               "longer while fan-out is over its share of CPU.").add(hub_stats.flush_period),
        Family("progressista_websocket_snapshot_rounds_total", "counter",
               "Rounds of snapshots sent to dashboards of the guide's protocol (/ws).")
        .add(hub_stats.snapshot_rounds),
        Family("progressista_websocket_messages_total", "counter",
               "WebSocket messages sent to dashboards.").add(hub_stats.messages_sent),
        Family("progressista_websocket_skipped_total", "counter",
               "Broadcasts skipped for a dashboard still writing its previous message.")
        .add(hub_stats.skipped_busy),
        Family("progressista_websocket_stalled_total", "counter",
               "Dashboards closed for not reading.").add(hub_stats.closed_stalled),
        Family("progressista_websocket_heartbeats_total", "counter",
               "Heartbeats sent to delta-protocol dashboards that heard nothing for a period.")
        .add(hub_stats.heartbeats),
        Family("progressista_cleanup_seconds", "summary", "Time spent in one cleanup sweep.")
        .add(metrics.sweep.count, "_count").add(metrics.sweep.total, "_sum"),
        Family("progressista_persist_seconds", "summary", "Time spent writing the state file.")
        .add(metrics.persist.count, "_count").add(metrics.persist.total, "_sum"),
        Family("progressista_persist_failures_total", "counter",
               "State-file writes that failed.").add(metrics.persist_failures),
        held,
        trimmed,
        Family("progressista_uptime_seconds", "gauge", "Seconds since the daemon started.")
        .add(uptime),
        Family("progressista_build_info", "gauge", "Version of the daemon and of Python.")
        .add(1, version=__version__, python=platform.python_version()),
    ]
    return families


def history_families(health: Mapping[str, Any],
                     figures: Optional[Mapping[str, Any]]) -> List[Family]:
    """The run history's families: its write queue, and per job (`JobFigures`) what it holds."""
    families = [
        Family("progressista_history_queued_runs", "gauge",
               "Runs ended but not yet written to the history.").add(health.get("queued", 0)),
        Family("progressista_history_dropped_runs_total", "counter",
               "Runs dropped because the history's write queue was full.")
        .add(health.get("dropped", 0)),
    ]
    if figures is None:
        return families
    runs = Family("progressista_history_runs", "gauge",
                  "Runs the history holds, by job and run status.")
    last_end = Family("progressista_history_last_end_timestamp_seconds", "gauge",
                      "When the job's last run of each status ended (epoch seconds).")
    last_duration = Family("progressista_history_last_duration_seconds", "gauge",
                           "How long the job's last run took.")
    usual = Family("progressista_history_close_duration_seconds", "gauge",
                   "Nearest-rank median and 90th percentile of the job's last 20 close runs, "
                   "which expected_duration and overdue come from.")
    for job, held in sorted(figures["jobs"].items()):
        for status, counted in held["statuses"].items():
            runs.add(counted["runs"], job=job, status=status)
            if counted["last_ended_at"] is not None:
                last_end.add(counted["last_ended_at"], job=job, status=status)
        if held["last"] is not None:
            last_duration.add(held["last"]["duration"], job=job)
        for quantile, key in (("0.5", "median"), ("0.9", "p90")):
            if held["duration"][key] is not None:
                usual.add(held["duration"][key], job=job, quantile=quantile)
    capped = Family("progressista_history_jobs_capped", "gauge",
                    "1 when the history holds more jobs than --metrics-max-jobs shows "
                    "(the first by name are shown).").add(int(bool(figures["more"])))
    return families + [runs, last_end, last_duration, usual, capped]
def notification_families(stats: Any, queued: Optional[int]) -> List[Family]:
    """The notifier's families from its `DeliveryStats`; the queue gauge when it could be read."""
    messages = Family("progressista_notifications_total", "counter",
                      "Notification messages finished, by route and result (sent, failed, "
                      "dropped).")
    for (route, result), count in sorted(stats.messages.items()):
        messages.add(count, route=route, result=result)
    attempts = Family("progressista_notification_attempts_total", "counter",
                      "Delivery attempts, retries included, by route.").add_each(
        "route", stats.attempts)
    latency = Family("progressista_notification_latency_seconds", "histogram",
                     "Seconds from a message queued to its receiver's acceptance.")
    for bound, count in stats.latency.cumulative():
        latency.add(count, "_bucket", le="+Inf" if math.isinf(bound) else _number(bound))
    latency.add(stats.latency.total, "_sum").add(stats.latency.count, "_count")
    dropped = sum(count for (_, result), count in stats.messages.items() if result == DROPPED)
    families = [messages, attempts, latency,
                Family("progressista_notifications_dropped_total", "counter",
                       "Messages dropped, oldest first, from a full notification queue, or "
                       "lost to a shared queue out of reach.").add(dropped)]
    if queued is not None:
        families.append(Family("progressista_notification_queue_length", "gauge",
                               "Messages waiting for delivery or being sent.").add(queued))
    return families


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{key}="{_escape_value(value)}"' for key, value in labels)
    return "{" + inner + "}"


def _escape_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    return repr(float(value))

