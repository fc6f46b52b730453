"""Fan-out latency: from a POST acknowledged to its receipt on each of N WebSocket dashboards.

The coordinator posts probe events (meta {"probe": k}) over keep-alive while wrk offers a
steady background load, and notes when each POST is acknowledged. The dashboards run in a
separate process and note when each probe arrives. Both read CLOCK_MONOTONIC
(time.monotonic), which is one clock for every process on the host, so the latency is the
receive time minus the acknowledgement time. Probes cycle through PROBE_TASKS task ids so
that coalesced flushes still carry each one.

    python bench/fanout.py --dashboards 100 --tasks 1000 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from typing import Dict, List
from urllib.parse import urlsplit

import harness

PROBE_TASKS = 20
PROBE_SPACING = 0.02
END_TASK = "fanout-end"
PROBE = re.compile(r'"probe":(-?\d+)')


async def receive(url: str, how_many: int, limit: float) -> List[List[List[float]]]:
    """Connect `how_many` delta dashboards; record (probe, receive time) until the end probe,
    one list per dashboard."""
    import tornado.websocket

    async def one(connection) -> List[List[float]]:
        seen: Dict[int, float] = {}
        while True:
            message = await connection.read_message()
            now = time.monotonic()
            if message is None:
                break
            probes = [int(k) for k in PROBE.findall(message)]
            for k in probes:
                seen.setdefault(k, now)
            if -1 in probes:
                break
        connection.close()
        return [[k, t] for k, t in seen.items() if k >= 0]

    connections = [await tornado.websocket.websocket_connect(url, max_message_size=1 << 30)
                   for _ in range(how_many)]
    print("connected", flush=True)
    results = await asyncio.wait_for(asyncio.gather(*(one(c) for c in connections)), limit)
    return list(results)


def post_probes(base_url: str, seconds: float) -> Dict[int, float]:
    """Probe k is POSTed every PROBE_SPACING seconds; returns k -> acknowledgement time."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    acked: Dict[int, float] = {}
    started = time.monotonic()
    k = 0
    while time.monotonic() - started < seconds:
        body = json.dumps({"task_id": f"fanout-probe-{k % PROBE_TASKS}", "n": k, "meta": {"probe": k}})
        conn.request("POST", "/progress", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        acked[k] = time.monotonic()
        if response.status != 200:
            raise RuntimeError(f"probe POST answered {response.status}")
        k += 1
        time.sleep(max(0.0, started + k * PROBE_SPACING - time.monotonic()))
    conn.request("POST", "/progress", json.dumps({"task_id": END_TASK, "meta": {"probe": -1}}),
                 {"Content-Type": "application/json"})
    conn.getresponse().read()
    conn.close()
    return acked


TARGET_OVER_INTERVAL_MS = 20


def measure(dashboards: int, tasks: int, seconds: float, load_connections: int,
            load_delay_ms: float, interval: float, features_on: bool = False) -> Dict:
    """Fan-out p50/p99 with `dashboards` readers and `tasks` tasks under a wrk load; with
    `features_on`, SPEC 16's every feature on (the load's events carry telemetry)."""
    with tempfile.TemporaryDirectory() as tmp:
        if features_on:
            with harness.every_feature_on(tmp) as options:
                return _measure(dashboards, tasks, seconds, load_connections, load_delay_ms,
                                interval, options, "telemetry")
        return _measure(dashboards, tasks, seconds, load_connections, load_delay_ms, interval,
                        harness.FEATURES_OFF, "plain")


def _measure(dashboards: int, tasks: int, seconds: float, load_connections: int,
             load_delay_ms: float, interval: float, options, shape: str) -> Dict:
    with harness.daemon(["--broadcast-interval", str(interval), *options]) as server:
        harness.populate(server.url, tasks)
        ws_url = server.url.replace("http://", "ws://") + "/ws?protocol=delta"
        argv = [sys.executable, __file__, "--receive", ws_url, "--dashboards", str(dashboards),
                "--seconds", str(seconds)]
        with harness.process(argv, stdout=subprocess.PIPE, text=True) as receivers:
            if receivers.stdout.readline().strip() != "connected":
                raise RuntimeError("the dashboards did not connect")
            harness.wait_for_dashboards(server, dashboards, 60)
            load = subprocess.Popen(
                ["wrk", "-t1", f"-c{load_connections}", f"-d{int(seconds) + 2}s", "-s",
                 str(harness.HERE / "post.lua"), server.url + "/progress"],
                env=_load_env(tasks, load_delay_ms, shape), stdout=subprocess.PIPE, text=True)
            try:
                time.sleep(1.0)
                acked = post_probes(server.url, seconds)
            finally:
                load_out, _ = load.communicate(timeout=seconds + 30)
            out, _ = receivers.communicate(timeout=seconds + 120)
    latencies, missed = freshness(json.loads(out), acked)
    match = re.search(r"BENCH requests=(\d+) .*seconds=([\d.]+)", load_out)
    load_rate = int(match.group(1)) / float(match.group(2)) if match else float("nan")
    return {
        "dashboards": dashboards, "tasks": tasks, "interval": interval,
        "probes": len(acked), "samples": len(latencies), "superseded": missed,
        "p50_ms": harness.percentile(latencies, 0.50) * 1000,
        "p99_ms": harness.percentile(latencies, 0.99) * 1000,
        "max_ms": max(latencies) * 1000 if latencies else float("nan"),
        "load_events_per_s": load_rate,
        "target_ms": interval * 1000 + TARGET_OVER_INTERVAL_MS,
    }


def freshness(received: List[List[List[float]]], acked: Dict[int, float]):
    """Per dashboard and probe: time from the probe's acknowledgement until that dashboard held
    it or a later value of the same task (a busy dashboard is resynced with the latest state,
    so a value can be superseded before it is seen). Returns the latencies and how many
    probes were only seen superseded."""
    latencies: List[float] = []
    superseded = 0
    for pairs in received:
        seen = {int(k): t for k, t in pairs}
        for k, ack in acked.items():
            later = k
            while later not in seen and later in acked:
                later += PROBE_TASKS
            if later in seen:
                latencies.append(seen[later] - ack)
                superseded += later != k
    return latencies, superseded


def _load_env(tasks: int, delay_ms: float, shape: str) -> Dict[str, str]:
    return dict(os.environ, TASKS=str(tasks), BATCH="1", DELAY_MS=str(delay_ms), SHAPE=shape)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dashboards", type=int, default=100)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--load-connections", type=int, default=8,
                        help="wrk connections of background load (default %(default)s)")
    parser.add_argument("--load-delay-ms", type=float, default=2,
                        help="pause before each load request per connection (default %(default)s)")
    parser.add_argument("--interval", type=float, default=0.1, help="daemon --broadcast-interval")
    parser.add_argument("--receive", metavar="WS_URL", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.receive:
        pairs = asyncio.run(receive(args.receive, args.dashboards, args.seconds + 90))
        print(json.dumps(pairs))
        return 0
    harness.raise_file_limit()
    row = measure(args.dashboards, args.tasks, args.seconds, args.load_connections,
                  args.load_delay_ms, args.interval)
    print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
