"""GET /tasks: the daemon's CPU time per request at a task count, every feature on (SPEC 16).

The tasks carry SPEC 16's telemetry (4 metrics, a log line); the requests go one after the
other over one connection, so the CPU the daemon used over them is theirs. Measured with
nothing changing between requests (the answer is kept until a change), and with one event
posted before each request (the answer made again: the pair's CPU less that of the POSTs alone).

    python bench/reads.py [--tasks 10000] [--requests 50]
"""

from __future__ import annotations

import argparse
import http.client
import sys
import tempfile
from typing import Dict
from urllib.parse import urlsplit

import harness

TARGET_MS = 5.0


def telemetry_task(i: int) -> Dict:
    return dict(harness.bench_task(i), status="update", n=i, postfix="loss=0.25",
                metrics={"loss": 0.25, "accuracy": 0.9, "lr": 0.001, "epoch": 3},
                log=f"step {i} loss 0.2500 " + "x" * 60)


def populate(url: str, tasks: int) -> None:
    for start in range(0, tasks, 1000):
        harness.post_json(url, [telemetry_task(i) for i in range(start, min(tasks, start + 1000))])


def measure(tasks: int = 10000, requests: int = 50) -> Dict[str, float]:
    """CPU ms per GET /tasks (all tasks, and ?status=update), and the answer's bytes."""
    with tempfile.TemporaryDirectory() as tmp, harness.every_feature_on(tmp) as options, \
            harness.daemon(options) as server:
        populate(server.url, tasks)
        figures: Dict[str, float] = {"tasks": tasks}
        for name, path in (("all", "/tasks"), ("filtered", "/tasks?status=update")):
            cpu_ms, size = cpu_per_request(server, path, requests)
            figures[f"{name}_cpu_ms"], figures[f"{name}_bytes"] = cpu_ms, size
        posts, _ = cpu_per_request(server, None, requests, change=True)
        pairs, _ = cpu_per_request(server, "/tasks", requests, change=True)
        figures["changed_cpu_ms"] = pairs - posts
        return figures


def cpu_per_request(server: harness.Daemon, path, requests: int, change: bool = False):
    """CPU ms per round of (with `change`, a POST of one event, then) a GET of `path`."""
    address = urlsplit(server.url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=60)
    size = get(connection, path or "/health")  # the first builds every entry; later ones use them
    before = harness.cpu_seconds(server.pid)
    for i in range(requests):
        if change:
            send(connection, "POST", "/progress", b'{"task_id":"bench-%d","n":%d}' % (i, i))
        if path:
            size = get(connection, path)
    used = harness.cpu_seconds(server.pid) - before
    connection.close()
    return used / requests * 1000, size


def get(connection: http.client.HTTPConnection, path: str) -> int:
    return send(connection, "GET", path)


def send(connection: http.client.HTTPConnection, method: str, path: str, body=None) -> int:
    connection.request(method, path, body=body, headers={"Content-Type": "application/json"})
    answer = connection.getresponse()
    body = answer.read()
    if answer.status != 200:
        raise RuntimeError(f"{method} {path}: {answer.status} {body[:200]!r}")
    return len(body)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=10000)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args(argv)
    figures = measure(args.tasks, args.requests)
    print(f"GET /tasks at {args.tasks:,} tasks: {figures['all_cpu_ms']:.2f} ms CPU per request "
          f"({figures['all_bytes']:,} bytes) with nothing changed; {figures['changed_cpu_ms']:.2f} ms "
          f"with an event before each; ?status=update {figures['filtered_cpu_ms']:.2f} ms "
          f"(target < {TARGET_MS:.0f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
