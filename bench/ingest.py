"""Ingest throughput: progressistad against a bare Tornado handler doing the same JSON parse.

Runs wrk (Debian's package) on loopback with bench/post.lua. The bare server runs for the
whole matrix and is measured in one-second rounds alternating with the daemon's, so each
ratio compares two figures taken under the same machine load (the machine is shared). One daemon per task count; dashboards
(delta-protocol WebSocket readers in a separate process) are connected for each row.
Bounded in time: each side of a row gets --seconds one-second rounds.

    python bench/ingest.py                       # 1000 tasks, 5 dashboards
    python bench/ingest.py --tasks 1 1000 10000 --dashboards 0 5 100
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from typing import Dict, Iterator, Sequence

import harness

TARGET_RATIO = 0.6
TARGET_BATCH_EVENTS = 50000


def matrix(task_counts: Sequence[int], dashboard_counts: Sequence[int], batches: Sequence[int],
           seconds: float, connections: int) -> Iterator[Dict]:
    """One row per (tasks, dashboards, batch): bare and ours events per second, side by side."""
    with harness.bare_server_process() as bare_server:
        for tasks in task_counts:
            with harness.daemon() as server:
                harness.populate(server.url, tasks)
                for watchers in dashboard_counts:
                    with harness.dashboards(server, watchers):
                        for batch in batches:
                            bare, ours = harness.wrk_side_by_side(
                                [bare_server, server], tasks, batch, seconds, connections)
                            yield {"tasks": tasks, "dashboards": watchers, "batch": batch,
                                   "bare": bare, "ours": ours,
                                   "ratio": ours["events"] / bare["events"],
                                   "cpu_ratio": bare["cpu_us"] / ours["cpu_us"]}


def telemetry_matrix(task_counts: Sequence[int], dashboard_counts: Sequence[int],
                     batches: Sequence[int], seconds: float, connections: int) -> Iterator[Dict]:
    """One row per (tasks, dashboards, batch): plain events and events with telemetry (SPEC 16's
    shape, post.lua's SHAPE=telemetry) against one daemon, in alternating rounds."""
    for tasks in task_counts:
        with harness.daemon() as server:
            harness.populate(server.url, tasks)
            for watchers in dashboard_counts:
                with harness.dashboards(server, watchers):
                    for batch in batches:
                        plain, telemetry = harness.wrk_side_by_side(
                            [server, server], tasks, batch, seconds, connections,
                            shapes=["plain", "telemetry"])
                        yield {"tasks": tasks, "dashboards": watchers, "batch": batch,
                               "plain": plain, "telemetry": telemetry,
                               "cpu_ratio": telemetry["cpu_us"] / plain["cpu_us"]}


HEADER = (f"{'tasks':>6} {'dash':>5} {'batch':>5} | {'bare ev/s':>10} | {'ours ev/s':>10} "
          f"{'p50 ms':>7} {'p99 ms':>7} {'errors':>6} | {'ratio':>5} | {'bare us/ev':>10} {'ours us/ev':>10} {'cpu ratio':>9}")


def format_row(row: Dict) -> str:
    bare, ours = row["bare"], row["ours"]
    return (f"{row['tasks']:>6} {row['dashboards']:>5} {row['batch']:>5} | {bare['events']:>10.0f} | "
            f"{ours['events']:>10.0f} {ours['p50']:>7.2f} {ours['p99']:>7.2f} "
            f"{ours['errors']:>6} | {row['ratio']:>5.2f} | {bare['cpu_us']:>10.1f} {ours['cpu_us']:>10.1f} "
            f"{row['cpu_ratio']:>9.2f}")


TELEMETRY_HEADER = (f"{'tasks':>6} {'dash':>5} {'batch':>5} | {'plain ev/s':>10} {'us/ev':>7} | "
                    f"{'telemetry ev/s':>14} {'us/ev':>7} {'p99 ms':>7} {'errors':>6} | {'cpu ratio':>9}")


def format_telemetry_row(row: Dict) -> str:
    plain, telemetry = row["plain"], row["telemetry"]
    return (f"{row['tasks']:>6} {row['dashboards']:>5} {row['batch']:>5} | {plain['events']:>10.0f} "
            f"{plain['cpu_us']:>7.1f} | {telemetry['events']:>14.0f} {telemetry['cpu_us']:>7.1f} "
            f"{telemetry['p99']:>7.2f} {telemetry['errors'] + plain['errors']:>6} | {row['cpu_ratio']:>9.2f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, nargs="+", default=[1000])
    parser.add_argument("--dashboards", type=int, nargs="+", default=[5])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 100])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
    parser.add_argument("--telemetry", action="store_true",
                        help="plain events against events with telemetry, on one daemon")
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 1
    harness.raise_file_limit()
    print(f"# ingest: wrk -t1 -c{args.connections}, {args.seconds} alternating 1-s rounds per side, loopback, {os.cpu_count()} cores, "
          f"Python {sys.version.split()[0]}")
    if args.telemetry:
        rows = telemetry_matrix(args.tasks, args.dashboards, args.batch, args.seconds, args.connections)
        header, format_line = TELEMETRY_HEADER, format_telemetry_row
    else:
        rows = matrix(args.tasks, args.dashboards, args.batch, args.seconds, args.connections)
        header, format_line = HEADER, format_row
    if not args.json:
        print(header)
        print("-" * len(header))
    for row in rows:
        print(json.dumps(row) if args.json else format_line(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
