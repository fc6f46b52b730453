"""Notifications: latency from an event to the receiver's request, and what routes cost ingest.

- latency: an `error` event goes through `TaskService.ingest` to `Alerts` (one webhook route,
  group-wait 0, no rate limit) and out to a receiver in another process on 127.0.0.1, which
  notes `time.monotonic()` (CLOCK_MONOTONIC, one clock for the host) when each request arrives;
  events are spaced so that each is its own message. p50 / p99 / max.
- ingest: CPU per event (time.process_time, best of --repeat) of `TaskService.ingest` of
  single update events, with no routes and with 10 routes matching everything (every event
  kind, match *), side by side; and the CPU per event of a transition (an `error` that all
  10 routes want) through the listener and the gathering.

- through the real daemon (a subprocess, as packaged): ingest events per second and its CPU
  per event under wrk (bench/post.lua, updates of populated tasks) of a daemon with no routes
  and of one with 10 routes matching everything, in alternating one-second rounds
  (harness.wrk_side_by_side; goal: within 5%); and the latency from the POST of an `error`
  to the receiver's request, one webhook route, group-wait 0.

    python bench/notify.py --events 500 --repeat 5
    python bench/notify.py --daemon-only --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List
from urllib.request import urlopen

import harness

from progressistad.alerts import Alerts
from progressistad.core.store import SweepPolicy, TaskStore
from progressistad.service import TaskService

def percentile(values: List[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def latency(events: int, spacing: float) -> Dict[str, float]:
    port = harness.free_port()
    with tempfile.TemporaryDirectory() as tmp, \
            harness.process([sys.executable, "-c", harness.RECEIVER, str(port)]):
        harness.wait_http(f"http://127.0.0.1:{port}/hook")
        path = harness.route_file(tmp, f"[hook]\nurl = http://127.0.0.1:{port}/hook\nevents = error\n"
                               "group-wait = 0\nrate-limit = 0\n")
        alerts = Alerts.load(path, {}, time.time, hostname="bench")
        service = TaskService(TaskStore(max_tasks=events + 10), time.time, SweepPolicy())
        service.add_listener(alerts.listener(service.store))
        alerts.start()
        sent: Dict[str, float] = {}
        for i in range(events):
            task_id = f"job{i}:0"
            sent[task_id] = time.monotonic()
            await service.ingest([{"task_id": task_id, "status": "error"}])
            await asyncio.sleep(spacing)
        deadline = time.monotonic() + 30
        while alerts.stats().messages[("hook", "sent")] < events and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await alerts.close()
        arrivals = json.loads(urlopen(f"http://127.0.0.1:{port}/hook").read())
    return waited(sent, arrivals)


def waited(sent: Dict[str, float], arrivals: Dict[str, float]) -> Dict[str, float]:
    """Percentiles of the ms from each task's event to its arrival at the receiver."""
    waits = [(arrivals[t] - sent[t]) * 1000 for t in sent if t in arrivals]
    return {"events": len(sent), "arrived": len(waits), "p50_ms": percentile(waits, 0.5),
            "p99_ms": percentile(waits, 0.99), "max_ms": max(waits),
            "mean_ms": statistics.mean(waits)}


def ten_routes(directory: str) -> str:
    return harness.route_file(directory, "".join(
        f"[r{i}]\nurl = http://127.0.0.1:9/r{i}\nevents = close, error, stalled, resumed, overdue\n"
        "group-wait = 10\nrate-limit = 0\n" for i in range(10)))


async def ingest_costs(events: int, repeat: int) -> Dict[str, float]:
    """CPU per event (µs) of ingest without routes, with 10 routes, and of a transition."""
    with tempfile.TemporaryDirectory() as tmp:
        path = ten_routes(tmp)

        def service_with(alerts_path):
            service = TaskService(TaskStore(max_tasks=events * 2 + 10), time.time, SweepPolicy())
            alerts = None
            if alerts_path:
                alerts = Alerts.load(alerts_path, {}, time.time, hostname="bench")
                service.add_listener(alerts.listener(service.store))
            return service, alerts

        starts = [{"task_id": f"t{i}", "status": "start"} for i in range(100)]
        updates = [[{"task_id": f"t{i % 100}", "n": i}] for i in range(events)]
        failures = [[{"task_id": f"job{i}:0", "status": "error"}] for i in range(events)]

        async def cpu_per_event(alerts_path, first, batches) -> float:
            service, alerts = service_with(alerts_path)
            if first:
                await service.ingest(first)
            started = time.process_time()
            for batch in batches:
                await service.ingest(batch)
            spent = time.process_time() - started
            if alerts:
                await alerts.close()
            return spent / len(batches) * 1e6

        plain, routed, errors, failuresplain = [], [], [], []
        for _ in range(repeat):  # alternating, so that other work on the machine hits both
            plain.append(await cpu_per_event(None, starts, updates))
            routed.append(await cpu_per_event(path, starts, updates))
            failuresplain.append(await cpu_per_event(None, [], failures))
            errors.append(await cpu_per_event(path, [], failures))
    return {"update_no_routes_us": min(plain), "update_10_routes_us": min(routed),
            "update_ratio": min(plain) / min(routed),
            "error_no_routes_us": min(failuresplain), "error_10_routes_us": min(errors),
            "error_extra_us": min(errors) - min(failuresplain)}


def daemon_ingest(tasks: int, batch: int, seconds: int, connections: int) -> Dict[str, float]:
    """Events/s and CPU per event of a daemon without routes and one with 10, side by side."""
    port = harness.free_port()
    with tempfile.TemporaryDirectory() as tmp, \
            harness.process([sys.executable, "-c", harness.RECEIVER, str(port)]):
        harness.wait_http(f"http://127.0.0.1:{port}/hook")
        routes = harness.daemon_routes(tmp, port, 10)
        with harness.daemon(["--notify-config="], persist=False) as plain, \
                harness.daemon(["--notify-config", routes], persist=False) as routed:
            for server in (plain, routed):
                harness.populate(server.url, tasks)
            bare, ours = harness.wrk_side_by_side([plain, routed], tasks, batch, seconds,
                                                  connections)
    return {"no_routes_events": bare["events"], "routes_events": ours["events"],
            "events_ratio": ours["events"] / bare["events"],
            "no_routes_cpu_us": bare["cpu_us"], "routes_cpu_us": ours["cpu_us"],
            "cpu_ratio": bare["cpu_us"] / ours["cpu_us"],
            "errors": bare["errors"] + ours["errors"]}


def daemon_latency(events: int, spacing: float) -> Dict[str, float]:
    """From the POST of an `error` (before it is sent) to the receiver's request, ms."""
    port = harness.free_port()
    with tempfile.TemporaryDirectory() as tmp, \
            harness.process([sys.executable, "-c", harness.RECEIVER, str(port)]):
        harness.wait_http(f"http://127.0.0.1:{port}/hook")
        with harness.daemon(["--notify-config", harness.daemon_routes(tmp, port, 1)],
                            persist=False) as server:
            sent: Dict[str, float] = {}
            for i in range(events):
                task_id = f"job{i}:0"
                sent[task_id] = time.monotonic()
                harness.post_json(server.url, {"task_id": task_id, "status": "error"})
                time.sleep(spacing)
            arrivals: Dict[str, float] = {}
            deadline = time.monotonic() + 30
            while len(arrivals) < events and time.monotonic() < deadline:
                time.sleep(0.1)
                arrivals = json.loads(urlopen(f"http://127.0.0.1:{port}/hook").read())
    return waited(sent, arrivals)


async def main_async(args) -> Dict[str, Dict[str, float]]:
    figures: Dict[str, Dict[str, float]] = {}
    if not args.daemon_only:
        figures["latency"] = await latency(args.events, args.spacing)
        figures["ingest"] = await ingest_costs(args.ingest_events, args.repeat)
    return figures


def daemon_figures(args) -> Dict[str, Dict[str, float]]:
    return {"daemon_latency": daemon_latency(args.events, args.spacing),
            "daemon_ingest": daemon_ingest(args.tasks, args.batch, args.seconds,
                                           args.connections)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=500, help="events timed for latency")
    parser.add_argument("--spacing", type=float, default=0.005, help="seconds between them")
    parser.add_argument("--ingest-events", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print the raw figures as JSON")
    parser.add_argument("--daemon-only", action="store_true",
                        help="only the runs through the real daemon")
    parser.add_argument("--no-daemon", action="store_true",
                        help="only the in-process runs")
    parser.add_argument("--tasks", type=int, default=1000, help="tasks updated under wrk")
    parser.add_argument("--batch", type=int, default=1, help="events per POST under wrk")
    parser.add_argument("--seconds", type=int, default=10,
                        help="one-second wrk rounds on each daemon")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections")
    args = parser.parse_args(argv)
    figures = asyncio.run(main_async(args))
    if not args.no_daemon:
        figures.update(daemon_figures(args))
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    for line in report(figures):
        print(line)
    return 0


def report(figures: Dict[str, Dict[str, float]]) -> List[str]:
    lines = []
    if "latency" in figures:
        ing = figures["ingest"]
        lines += [
            latency_line("in-process, event -> receiver", figures["latency"]),
            f"in-process, ingest of an update, CPU per event: {ing['update_no_routes_us']:.2f} µs "
            f"without routes, {ing['update_10_routes_us']:.2f} µs with 10 routes matching "
            f"everything (rate ratio {ing['update_ratio']:.3f})",
            f"in-process, ingest of an error all 10 routes want, CPU per event: "
            f"{ing['error_no_routes_us']:.2f} µs without routes, {ing['error_10_routes_us']:.2f} µs "
            f"with them (+{ing['error_extra_us']:.2f} µs: events, matching, gathering)"]
    if "daemon_latency" in figures:
        ing = figures["daemon_ingest"]
        lines += [
            latency_line("daemon, POST of an error -> receiver's request",
                         figures["daemon_latency"]),
            f"daemon, ingest under wrk: {ing['no_routes_events']:.0f} events/s without routes, "
            f"{ing['routes_events']:.0f} with 10 routes matching everything (ratio "
            f"{ing['events_ratio']:.3f}; goal >= 0.95); CPU per event {ing['no_routes_cpu_us']:.1f}"
            f" µs and {ing['routes_cpu_us']:.1f} µs (ratio {ing['cpu_ratio']:.3f}); "
            f"{ing['errors']:.0f} errors"]
    return lines


def latency_line(what: str, lat: Dict[str, float]) -> str:
    return (f"{what}, 1 webhook route, group-wait 0 ({lat['arrived']}/{lat['events']} arrived): "
            f"p50 {lat['p50_ms']:.2f} ms, p99 {lat['p99_ms']:.2f} ms, max {lat['max_ms']:.2f} ms")


if __name__ == "__main__":
    sys.exit(main())
