"""Resident memory of the daemon: per task at 100,000 tasks, and with 1,000 dashboards connected.

RSS is read from /proc/PID/status. Per task: (RSS after loading N realistic tasks - RSS of the
idle daemon) / N. Dashboards: RSS of a daemon holding --dashboard-tasks tasks before and
after --dashboards delta-protocol WebSocket readers (in a separate process) have connected
and read their snapshots. The open-file limit is raised to its hard limit first.

    python bench/memory.py --tasks 100000 --dashboards 1000
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import harness

SETTLE_SECONDS = 1.0


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
    args = parser.parse_args(argv)
    limit = harness.raise_file_limit()
    if limit < args.dashboards + 100:
        print(f"open-file limit {limit} is too low for {args.dashboards} dashboards", file=sys.stderr)
        return 1
    print(json.dumps(per_task(args.tasks)), flush=True)
    print(json.dumps(with_dashboards(args.dashboards, args.dashboard_tasks)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
