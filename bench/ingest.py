"""Ingest throughput: progressistad against a bare Tornado handler doing the same JSON parse.

Runs wrk (Debian's package) on loopback with bench/post.lua. The bare server runs for the
whole matrix and is measured in one-second rounds alternating with the daemon's, so each
ratio compares two figures taken under the same machine load (the machine is shared). One daemon per task count; dashboards
(delta-protocol WebSocket readers in a separate process) are connected for each row.
Bounded in time: each side of a row gets --seconds one-second rounds.

    python bench/ingest.py                       # 1000 tasks, 5 dashboards
    python bench/ingest.py --tasks 1 1000 10000 --dashboards 0 5 100
    python bench/ingest.py --baseline /tmp/older-checkout    # before and after, side by side
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import shutil
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Callable, ContextManager, Dict, Iterator, List, Sequence, Tuple

import harness

TARGET_RATIO = 0.6
TARGET_BATCH_EVENTS = 50000
TARGET_SINGLE = 0.8
TARGET_BATCH = 0.6
TARGET_FEATURES = 0.95
TARGET_SNAPSHOT_WATCHERS = 0.5


def matrix(task_counts: Sequence[int], dashboard_counts: Sequence[int], batches: Sequence[int],
           seconds: float, connections: int) -> Iterator[Dict]:
    """One row per (tasks, dashboards, batch): bare and ours events per second, side by side."""
    with harness.bare_server_process() as bare:
        for tasks, watchers, batch, (first, second) in _side_by_side(
                task_counts, dashboard_counts, batches, seconds, connections,
                [harness.daemon], lambda ours: [bare, *ours], ("plain", "plain")):
            yield _pair_row(tasks, watchers, batch, SIDES["bare"], first, second)


def telemetry_matrix(task_counts: Sequence[int], dashboard_counts: Sequence[int],
                     batches: Sequence[int], seconds: float, connections: int) -> Iterator[Dict]:
    """One row per (tasks, dashboards, batch): plain events and events with telemetry (SPEC 16's
    shape, post.lua's SHAPE=telemetry) against one daemon, in alternating rounds."""
    for tasks, watchers, batch, (first, second) in _side_by_side(
            task_counts, dashboard_counts, batches, seconds, connections,
            [harness.daemon], lambda ours: [*ours, *ours], ("plain", "telemetry")):
        yield _pair_row(tasks, watchers, batch, SIDES["telemetry"], first, second)


def baseline_matrix(task_counts: Sequence[int], dashboard_counts: Sequence[int],
                    batches: Sequence[int], seconds: float, connections: int,
                    baseline: Path) -> Iterator[Dict]:
    """One row per (tasks, dashboards, batch): the daemon of checkout `baseline` against this
    one's, each populated and watched alike, in alternating rounds."""
    for tasks, watchers, batch, (first, second) in _side_by_side(
            task_counts, dashboard_counts, batches, seconds, connections,
            [functools.partial(harness.daemon, code=baseline), harness.daemon], list,
            ("plain", "plain")):
        yield _pair_row(tasks, watchers, batch, SIDES["baseline"], first, second)


def features_matrix(task_counts: Sequence[int], dashboard_counts: Sequence[int],
                    batches: Sequence[int], seconds: float, connections: int,
                    protocol: str = "delta") -> Iterator[Dict]:
    """One row per (tasks, dashboards, batch): the daemon with every feature on (SPEC 16: its
    events carry telemetry) against the bare handler parsing the same events, and against a
    daemon with the features off sent plain events; the three in alternating rounds.
    `ratio`/`cpu_ratio` are on against bare, `features_ratio`/`features_cpu_ratio` on against off."""
    with tempfile.TemporaryDirectory() as tmp, harness.bare_server_process() as bare, \
            harness.every_feature_on(tmp) as on_options:
        daemons = [functools.partial(harness.daemon, harness.FEATURES_OFF),
                   functools.partial(harness.daemon, on_options)]
        for tasks, watchers, batch, sides in _side_by_side(
                task_counts, dashboard_counts, batches, seconds, connections, daemons,
                lambda ours: [bare, *ours], ("telemetry", "plain", "telemetry"), protocol):
            yield _features_row(tasks, watchers, batch, *sides)


def _side_by_side(task_counts: Sequence[int], dashboard_counts: Sequence[int],
                  batches: Sequence[int], seconds: float, connections: int,
                  daemons: Sequence[Callable[[], ContextManager[harness.Daemon]]],
                  servers: Callable[[List[harness.Daemon]], List[harness.Daemon]],
                  shapes: Sequence[str], protocol: str = "delta") -> Iterator[Tuple]:
    """Per task count the daemons `daemons` start, populated and watched alike; per (dashboards,
    batch) wrk against `servers(those daemons)` in alternating rounds, each sent its shape of
    events. Yields (tasks, dashboards, batch, the figures of each server in that order)."""
    for tasks in task_counts:
        with contextlib.ExitStack() as started:
            ours = [started.enter_context(start()) for start in daemons]
            for daemon in ours:
                harness.populate(daemon.url, tasks)
            for watchers in dashboard_counts:
                with contextlib.ExitStack() as watching:
                    for daemon in ours:
                        watching.enter_context(harness.dashboards(daemon, watchers, protocol=protocol))
                    for batch in batches:
                        yield tasks, watchers, batch, harness.wrk_side_by_side(
                            servers(ours), tasks, batch, seconds, connections, shapes)


def snapshot_rounds(seconds: float, tasks: int = 10000, watchers: int = 100) -> Dict:
    """How often each of `watchers` snapshot-protocol watchers hears at `tasks` tasks while wrk
    sends single events for `seconds`, every feature on (/metrics's messages sent)."""
    with tempfile.TemporaryDirectory() as tmp, harness.every_feature_on(tmp) as options, \
            harness.daemon(options) as server:
        harness.populate(server.url, tasks)
        with harness.dashboards(server, watchers, protocol="snapshot"):
            before = harness.metric(server.url, MESSAGES)
            harness.wrk(server.url, tasks, 1, seconds, 8, shape="telemetry")
            heard = (harness.metric(server.url, MESSAGES) - before) / watchers
        size = len(urllib.request.urlopen(server.url + "/tasks", timeout=60).read())
    return {"messages_per_watcher": heard, "seconds_per_message": seconds / max(heard, 1e-9),
            "snapshot_bytes": size}


MESSAGES = "progressista_websocket_messages_total"


def _pair_row(tasks: int, watchers: int, batch: int, names: Sequence[str], first: Dict,
              second: Dict) -> Dict:
    """`ratio` is of rates, `cpu_ratio` the first side's CPU per event over the second's."""
    return {"tasks": tasks, "dashboards": watchers, "batch": batch, names[0]: first,
            names[1]: second, "ratio": second["events"] / first["events"],
            "cpu_ratio": first["cpu_us"] / second["cpu_us"]}


def _features_row(tasks: int, watchers: int, batch: int, bare: Dict, off: Dict, on: Dict) -> Dict:
    return {"tasks": tasks, "dashboards": watchers, "batch": batch, "bare": bare, "off": off,
            "on": on, "ratio": on["events"] / bare["events"], "cpu_ratio": bare["cpu_us"] / on["cpu_us"],
            "features_ratio": on["events"] / off["events"],
            "features_cpu_ratio": off["cpu_us"] / on["cpu_us"]}


SIDES = {"bare": ("bare", "ours"), "telemetry": ("plain", "telemetry"), "baseline": ("before", "after"),
         "features": ("bare", "on")}
"""The two sides a row compares, by the kind of run: (reference, measured)."""


def header(kind: str = "bare") -> str:
    reference, measured = SIDES[kind]
    return (f"{'tasks':>6} {'dash':>5} {'batch':>5} | {reference + ' ev/s':>10} | {measured + ' ev/s':>14} "
            f"{'p50 ms':>7} {'p99 ms':>7} {'errors':>6} | {'ratio':>5} | {reference + ' us/ev':>10} "
            f"{measured + ' us/ev':>15} {'cpu ratio':>9}")


def format_row(row: Dict, kind: str = "bare") -> str:
    reference, measured = (row[side] for side in SIDES[kind])
    return (f"{row['tasks']:>6} {row['dashboards']:>5} {row['batch']:>5} | {reference['events']:>10.0f} | "
            f"{measured['events']:>14.0f} {measured['p50']:>7.2f} {measured['p99']:>7.2f} "
            f"{measured['errors']:>6} | {row['ratio']:>5.2f} | {reference['cpu_us']:>10.1f} "
            f"{measured['cpu_us']:>15.1f} {row['cpu_ratio']:>9.2f}"
            + (f" | off {row['off']['cpu_us']:.1f} us/ev, on/off CPU {row['features_cpu_ratio']:.2f}"
               if kind == "features" else ""))


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
    parser.add_argument("--features", action="store_true",
                        help="every feature on (SPEC 16) against the bare handler and features off")
    parser.add_argument("--protocol", choices=("delta", "snapshot"), default="delta",
                        help="the dashboards' protocol, with --features")
    parser.add_argument("--baseline", type=Path, metavar="DIR",
                        help="the daemon of checkout DIR (before) against this one's (after)")
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 1
    harness.raise_file_limit()
    print(f"# ingest: wrk -t1 -c{args.connections}, {args.seconds} alternating 1-s rounds per side, loopback, {os.cpu_count()} cores, "
          f"Python {sys.version.split()[0]}")
    kind = "baseline" if args.baseline else "telemetry" if args.telemetry else \
        "features" if args.features else "bare"
    runs = {"bare": matrix, "telemetry": telemetry_matrix,
            "features": functools.partial(features_matrix, protocol=args.protocol),
            "baseline": functools.partial(baseline_matrix, baseline=args.baseline)}[kind]
    if not args.json:
        print(header(kind))
        print("-" * len(header(kind)))
    for row in runs(args.tasks, args.dashboards, args.batch, args.seconds, args.connections):
        print(json.dumps(row) if args.json else format_row(row, kind), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
