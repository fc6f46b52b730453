"""One-shot calls to the daemon for the command line: send an event, list and remove tasks, read
the run history, test a notification route; the tables the command prints."""

from __future__ import annotations

import http.client
import time
from typing import Any, Dict, List, Optional, Sequence
from urllib.parse import quote, urlencode

from progressistad.client.settings import auth_headers, base_url, safe_url
from progressistad.client.transport import Connection, Response
from progressistad.client.units import format_progress, format_rate


class DaemonError(Exception):
    """The daemon could not be reached or refused the request; the message is one line for the user."""


class Daemon:
    """The daemon's HTTP API at a base URL, with an optional token."""

    def __init__(self, url: str, token: Optional[str], timeout: float) -> None:
        self.url = base_url(url)
        self.connection = Connection(self.url, timeout, auth_headers(token))

    def call(self, method: str, path: str, payload: Any = None, query: str = "") -> Any:
        """The JSON body of a 2xx answer; DaemonError for anything else."""
        try:
            response = self.connection.request(method, path, payload, query)
        except (OSError, http.client.HTTPException) as error:
            raise DaemonError(f"cannot reach the daemon at {safe_url(self.url)}: "
                              f"{getattr(error, 'strerror', None) or error}") from None
        finally:
            self.connection.close()
        if not response.ok:
            raise DaemonError(self._refusal(response))
        return response.body

    def _refusal(self, response: Response) -> str:
        hint = ""
        if response.status == 401:
            hint = " (set --token or PROGRESSISTA_API_TOKEN)"
        elif isinstance(response.body, dict) and isinstance(response.body.get("routes"), list):
            hint = f" (routes: {', '.join(map(str, response.body['routes'])) or 'none'})"
        return f"the daemon at {safe_url(self.url)} answered {response.error}{hint}"

    def send(self, event: Dict[str, Any]) -> Any:
        return self.call("POST", "/progress", event)

    def tasks(self, statuses: Optional[str] = None) -> Dict[str, Any]:
        query = urlencode({"status": statuses}) if statuses else ""
        return self.call("GET", "/tasks", query=query)["tasks"]

    def remove(self, task_id: str) -> bool:
        return bool(self.call("DELETE", "/tasks/" + quote(task_id, safe=""))["removed"])

    def remove_where(self, status: Optional[str], older_than: Optional[float]) -> List[str]:
        filters = {k: v for k, v in (("status", status), ("older_than", older_than)) if v is not None}
        return list(self.call("DELETE", "/tasks", query=urlencode(filters))["removed"])


    def runs(self, job: Optional[str], limit: Optional[int]) -> Dict[str, Any]:
        """GET /history: `{"runs", "next"}`, the newest first."""
        filters = {k: v for k, v in (("job", job), ("limit", limit)) if v is not None}
        return self.call("GET", "/history", query=urlencode(filters))

    def jobs(self, pattern: Optional[str], limit: Optional[int]) -> Dict[str, Any]:
        """GET /history/jobs: `{"jobs", "next"}`, by name."""
        filters = {k: v for k, v in (("job", pattern), ("limit", limit)) if v is not None}
        return self.call("GET", "/history/jobs", query=urlencode(filters))
    def notify_test(self, route: str) -> Dict[str, Any]:
        """Send a test message through a notification route: its delivery record."""
        return self.call("POST", "/notifications/test", query=urlencode({"route": route}))


def delivery_line(record: Dict[str, Any]) -> str:
    """How a test message went, in one line."""
    attempts = record.get("attempts") or 0
    tried = f"{attempts} attempt{'' if attempts == 1 else 's'}"
    result = record.get("result")
    if result == "sent":
        return f"sent test message {record.get('id')} through route {record.get('route')} ({tried})"
    if result in ("queued", "retrying"):
        return (f"route {record.get('route')}: the receiver has not answered yet ({result}, "
                f"{tried}; GET /notifications shows how it ends)")
    return f"route {record.get('route')}: {result} after {tried}: {record.get('error')}"


COLUMNS = ("TASK", "STATUS", "PROGRESS", "%", "RATE", "ETA", "IDLE", "DESC")
RUN_COLUMNS = ("ENDED", "STATUS", "DURATION", "PROGRESS", "TASK", "DESC")
JOB_COLUMNS = ("JOB", "RUNS", "OK", "FAILED", "USUALLY", "P90", "LAST", "ENDED")


def table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Aligned columns, the last one left ragged."""
    rows = [tuple(columns)] + [tuple(row) for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1]
        for row in rows).rstrip() + "\n"


def task_table(tasks: Dict[str, Any], now: Optional[float] = None) -> str:
    """The tasks as an aligned text table, newest update first."""
    now = time.time() if now is None else now
    return table(COLUMNS, [_row(task, now) for task in sorted(
        tasks.values(), key=lambda t: -(t.get("updated_at") or 0))])


def run_table(runs: Sequence[Dict[str, Any]]) -> str:
    """Runs as GET /history gives them (newest first): when, how, how long, how far."""
    return table(RUN_COLUMNS, [(
        _when(run["ended_at"]), run["status"], _duration(run["duration"]),
        format_progress(run.get("n") or 0, run.get("total"), run.get("unit") or "", between="/"),
        str(run["task_id"]), str(run.get("desc") or "")) for run in runs])


def job_table(jobs: Dict[str, Dict[str, Any]]) -> str:
    """Jobs as GET /history/jobs gives them: outcomes, usual duration, the last run."""
    rows = []
    for job, summary in jobs.items():
        last, usual = summary.get("last") or {}, summary["duration"]
        rows.append((job, str(summary["runs"]), str(summary["ok"]), str(summary["failed"]),
                     "" if usual["median"] is None else _duration(usual["median"]),
                     "" if usual["p90"] is None else _duration(usual["p90"]),
                     str(last.get("status", "")),
                     _when(last["ended_at"]) if last.get("ended_at") else ""))
    return table(JOB_COLUMNS, rows)


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch))


def _row(task: Dict[str, Any], now: float) -> tuple:
    n, total, unit = task.get("n") or 0, task.get("total"), task.get("unit") or ""
    # A bare "/": the dashboard's spaced " / " would widen the column on every row.
    progress = format_progress(n, total, unit, between="/")
    percent = f"{100 * n / total:.0f}" if total else ""
    rate = format_rate(task["rate"], unit) if task.get("rate") else ""
    eta = _duration(task["eta"]) if task.get("eta") is not None else ""
    idle = _duration(now - task["updated_at"]) if task.get("updated_at") else ""
    return (str(task.get("task_id")), str(task.get("status")), progress, percent, rate, eta, idle,
            str(task.get("desc") or ""))


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
