"""Resident memory of the daemon: per task at 100,000 tasks, with 1,000 dashboards connected,
and per task with telemetry (4 metrics and a full log tail), within the telemetry budget and
flooded past it.

RSS is read from /proc/PID/status. Per task: (RSS after loading N realistic tasks - RSS of the
idle daemon) / N. Dashboards: RSS of a daemon holding --dashboard-tasks tasks before and
after --dashboards delta-protocol WebSocket readers (in a separate process) have connected
and read their snapshots. Telemetry: the same per-task figure once each task also got 4
metrics and LOG_TAIL_LINES lines of 80 characters (--telemetry-tasks of them, within the
budget), then --flood-tasks tasks so logged (past the budget), with the bytes /metrics says
are held and trimmed. The open-file limit is raised to its hard limit first.

    python bench/memory.py --tasks 100000 --dashboards 1000 --telemetry-tasks 4000 --flood-tasks 10000
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import harness

from progressistad import contract

SETTLE_SECONDS = 1.0
LINE = "x" * 80
EVENTS_PER_POST = 100
"""Events of contract.LOG_MAX_LINES lines each: a request well within --max-body-bytes."""


def per_task(tasks: int) -> dict:
    with harness.daemon() as server:
        harness.populate(server.url, 1)  # the code paths of an ingest, loaded before the baseline
        time.sleep(SETTLE_SECONDS)
        idle = server.rss_bytes()
        harness.populate(server.url, tasks, first=1)
        time.sleep(SETTLE_SECONDS)
        loaded = server.rss_bytes()
        count = server.health()["tasks"]
    return {"tasks": count, "idle_rss_mib": idle / 2**20, "loaded_rss_mib": loaded / 2**20,
            "bytes_per_task": (loaded - idle) / (count - 1)}


def log_tasks(url: str, tasks: int, first: int = 0) -> None:
    """Give tasks `first`.. `first + tasks - 1` 4 metrics and a full log tail of LINE."""
    events = []
    for i in range(first, first + tasks):
        for start in range(0, contract.LOG_TAIL_LINES, contract.LOG_MAX_LINES):
            events.append({"task_id": f"bench-{i}", "n": start + 1,
                           "metrics": {"loss": 1 / (i + 1), "accuracy": 0.5, "lr": 1e-3, "epoch": start},
                           "log": [LINE] * contract.LOG_MAX_LINES})
    for start in range(0, len(events), EVENTS_PER_POST):
        harness.post_json(url, events[start:start + EVENTS_PER_POST])


def telemetry_metrics(server) -> dict:
    """progressista_telemetry_* of /metrics, by name and kind."""
    import urllib.request

    with urllib.request.urlopen(server.url + "/metrics", timeout=30) as answer:
        text = answer.read().decode()
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines() if line.startswith("progressista_telemetry")}


def per_task_with_telemetry(tasks: int, flood: int) -> dict:
    with harness.daemon() as server:
        harness.populate(server.url, 1)
        log_tasks(server.url, 1)
        time.sleep(SETTLE_SECONDS)
        idle = server.rss_bytes()
        harness.populate(server.url, tasks, first=1)
        log_tasks(server.url, tasks, first=1)
        time.sleep(SETTLE_SECONDS)
        loaded = server.rss_bytes()
        within = telemetry_metrics(server)
        harness.populate(server.url, flood - tasks, first=tasks + 1)
        log_tasks(server.url, flood - tasks, first=tasks + 1)
        time.sleep(SETTLE_SECONDS)
        flooded = server.rss_bytes()
        past = telemetry_metrics(server)
    return {"tasks": tasks, "idle_rss_mib": idle / 2**20, "loaded_rss_mib": loaded / 2**20,
            "bytes_per_task": (loaded - idle) / tasks, "held_within": within,
            "flood_tasks": flood, "flooded_rss_mib": flooded / 2**20, "held_past": past}


def with_dashboards(dashboards: int, tasks: int) -> dict:
    with harness.daemon() as server:
        harness.populate(server.url, tasks)
        time.sleep(SETTLE_SECONDS)
        before = server.rss_bytes()
        started = time.monotonic()
        with harness.dashboards(server, dashboards, timeout=120):
            connected = time.monotonic() - started
            time.sleep(SETTLE_SECONDS)
            after = server.rss_bytes()
    return {"dashboards": dashboards, "tasks": tasks, "connect_seconds": connected,
            "rss_before_mib": before / 2**20, "rss_after_mib": after / 2**20,
            "bytes_per_dashboard": (after - before) / dashboards}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=100000)
    parser.add_argument("--dashboards", type=int, default=1000)
    parser.add_argument("--dashboard-tasks", type=int, default=1000,
                        help="tasks held while the dashboards connect (default %(default)s)")
    parser.add_argument("--telemetry-tasks", type=int, default=4000,
                        help="tasks with 4 metrics and a full tail, within the budget (default %(default)s)")
    parser.add_argument("--flood-tasks", type=int, default=10000,
                        help="tasks so logged in all, past the budget (default %(default)s)")
    args = parser.parse_args(argv)
    limit = harness.raise_file_limit()
    if limit < args.dashboards + 100:
        print(f"open-file limit {limit} is too low for {args.dashboards} dashboards", file=sys.stderr)
        return 1
    print(json.dumps(per_task(args.tasks)), flush=True)
    print(json.dumps(with_dashboards(args.dashboards, args.dashboard_tasks)), flush=True)
    print(json.dumps(per_task_with_telemetry(args.telemetry_tasks, args.flood_tasks)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
