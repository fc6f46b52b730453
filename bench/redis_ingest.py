"""Ingest and fan-out with the Redis store, one daemon and two, next to the in-memory store.

Ingest: wrk (bench/post.lua) against each daemon at once, single events and batches of 100,
reported as events per second in total and per daemon, and as the CPU time the daemons and
redis-server spent per event (a figure that holds on a machine shared with other work, where
events per second mostly measure the share of CPU the processes got). Fan-out: a probe posts to the first
daemon and times how long until a dashboard on the last daemon shows the change (p50/p99),
with 5 more dashboards connected. Everything on loopback, bounded in time:

    python bench/redis_ingest.py                 # 5 s per measurement, 200 fan-out probes
    python bench/redis_ingest.py --seconds 10 --probes 500

With `--code LABEL=DIR` (repeatable), the Redis rows are measured for the daemon of each
checkout DIR as well, one and two daemons of each in turn, in the same run; the label names
them in the table (this checkout's is `--label`, `here` by default):

    git archive COMMIT | tar -x -C /tmp/other
    python bench/redis_ingest.py --code other=/tmp/other
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import List

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import harness  # noqa: E402  (bench/harness.py: processes, dashboards, wrk)


def cpu_seconds(pids: List[int]) -> float:
    """User plus system CPU time the processes have used so far (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


@contextlib.contextmanager
def daemon(extra_args, pids: List[int], code: Path = harness.REPO):
    """One daemon of checkout `code` as bench/harness.py starts it; its pid is appended to `pids`."""
    port = harness.free_port()
    argv = [sys.executable, "-m", "progressistad", "--host", "127.0.0.1", "--port", str(port),
            "--max-tasks", "200000", "--log-level", "warning", *extra_args]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROGRESSISTA_")}
    env["PROGRESSISTA_CONFIG"] = ""
    with harness.process(argv, cwd=code, env=env) as proc:
        pids.append(proc.pid)
        harness.wait_http(f"http://127.0.0.1:{port}/health")
        yield harness.Daemon(f"http://127.0.0.1:{port}", proc.pid)


@contextlib.contextmanager
def redis_server(pids: List[int]):
    """A throwaway redis-server on a free loopback port, no persistence."""
    port = harness.free_port()
    workdir = tempfile.mkdtemp(prefix="bench-redis-")
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", workdir]
    with harness.process(argv) as proc:
        pids.append(proc.pid)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    break
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"


@contextlib.contextmanager
def group(store: str, count: int, broadcast: float, pids: List[int], code: Path):
    """`count` daemons on the in-memory store (count must be 1) or on one fresh Redis."""
    args = ["--broadcast-interval", str(broadcast)]
    with contextlib.ExitStack() as stack:
        if store == "redis":
            url = stack.enter_context(redis_server(pids))
            args += ["--redis-url", url]
        yield [stack.enter_context(daemon(args, pids, code)) for _ in range(count)]


def wrk_all(urls: List[str], tasks: int, batch: int, seconds: float, connections: int,
            pids: List[int]) -> dict:
    """wrk against every daemon at the same time; events/s in total and per daemon."""
    results: List[dict] = [{}] * len(urls)
    cpu_before = cpu_seconds(pids)

    def run(index: int) -> None:
        results[index] = harness.wrk(urls[index], tasks, batch, seconds, connections)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(urls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    cpu = cpu_seconds(pids) - cpu_before
    total = sum(r["events"] for r in results)
    events = sum(r["events"] for r in results) * seconds
    return {"events": total, "per_daemon": total / len(urls), "cpu_us": 1e6 * cpu / max(1, events),
            "errors": sum(r["errors"] for r in results), "p99": max(r["p99"] for r in results)}


async def probe_fanout(post_url: str, watch_url: str, probes: int) -> List[float]:
    """Seconds from sending a POST to `post_url` until a dashboard on `watch_url` shows it."""
    import tornado.httpclient
    import tornado.websocket

    client = tornado.httpclient.AsyncHTTPClient()
    conn = await tornado.websocket.websocket_connect(
        watch_url.replace("http://", "ws://") + "/ws?protocol=delta")
    seen = {}

    async def read() -> None:
        while True:
            text = await conn.read_message()
            if text is None:
                return
            task = json.loads(text).get("tasks", {}).get("probe")
            if task is not None:
                seen.setdefault(task["n"], time.perf_counter())

    reader = asyncio.ensure_future(read())
    latencies = []
    rng = random.Random(7)
    try:
        for i in range(1, probes + 1):
            sent = time.perf_counter()
            await client.fetch(post_url + "/progress", method="POST",
                               body=json.dumps({"task_id": "probe", "n": i}))
            deadline = sent + 5.0
            while i not in seen and time.perf_counter() < deadline:
                await asyncio.sleep(0.001)
            if i in seen:
                latencies.append(seen[i] - sent)
            await asyncio.sleep(rng.uniform(0.0, 0.05))
    finally:
        reader.cancel()
        conn.close()
    return latencies


def percentile(values: List[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def measure(store: str, count: int, label: str, code: Path, args) -> dict:
    row = {"store": store, "daemons": count, "code": label}
    pids: List[int] = []
    with group(store, count, args.broadcast, pids, code) as daemons:
        urls = [d.url for d in daemons]
        harness.populate(urls[0], args.tasks)
        with contextlib.ExitStack() as stack:
            for server in daemons:
                stack.enter_context(harness.dashboards(server, args.dashboards))
            for batch in (1, 100):
                row[f"batch{batch}"] = wrk_all(urls, args.tasks, batch, args.seconds,
                                               args.connections, pids)
            latencies = asyncio.run(probe_fanout(urls[0], urls[-1], args.probes))
    row["fanout_p50_ms"] = 1000 * percentile(latencies, 0.50)
    row["fanout_p99_ms"] = 1000 * percentile(latencies, 0.99)
    row["fanout_lost"] = args.probes - len(latencies)
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--dashboards", type=int, default=5)
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--broadcast", type=float, default=0.1)
    parser.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
    parser.add_argument("--quick", action="store_true", help="2 s measurements, 50 probes")
    parser.add_argument("--code", action="append", default=[], metavar="LABEL=DIR",
                        help="also measure the Redis rows for the checkout in DIR")
    parser.add_argument("--label", default="here", help="this checkout's name in the table")
    args = parser.parse_args(argv)
    codes = [(args.label, harness.REPO)]
    for item in args.code:
        label, sep, path = item.partition("=")
        if not sep or not (Path(path) / "progressistad").is_dir():
            parser.error(f"--code {item}: not LABEL=DIR with a progressistad package in DIR")
        codes.append((label, Path(path).resolve()))
    if args.quick:
        args.seconds, args.probes = 2, 50
    for tool in ("wrk", "redis-server"):
        if not shutil.which(tool):
            print(f"{tool} is not installed: apt-get install {tool}", file=sys.stderr)
            return 1
    print(f"# redis ingest: wrk -t1 -c{args.connections} -d{args.seconds}s per daemon, "
          f"{args.tasks} tasks, {args.dashboards} dashboards per daemon, broadcast "
          f"{args.broadcast}s, {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    header = (f"{'store':>6} {'code':>8} {'daemons':>7} | {'single ev/s':>11} {'per daemon':>10} "
              f"{'cpu us/ev':>9} | {'batch100 ev/s':>13} {'per daemon':>10} {'cpu us/ev':>9} "
              f"{'p99 ms':>7} | {'fan-out p50 ms':>14} {'p99 ms':>7} {'lost':>4} | {'errors':>6}")
    print(header)
    print("-" * len(header))
    rows = [("memory", 1, args.label, harness.REPO)] + [
        ("redis", count, label, code) for count in (1, 2) for label, code in codes]
    for store, count, label, code in rows:
        row = measure(store, count, label, code, args)
        if args.json:
            print(json.dumps(row), flush=True)
            continue
        single, batch = row["batch1"], row["batch100"]
        print(f"{store:>6} {label:>8} {count:>7} | {single['events']:>11.0f} {single['per_daemon']:>10.0f} "
              f"{single['cpu_us']:>9.0f} | {batch['events']:>13.0f} {batch['per_daemon']:>10.0f} "
              f"{batch['cpu_us']:>9.1f} {batch['p99']:>7.1f} | "
              f"{row['fanout_p50_ms']:>14.1f} {row['fanout_p99_ms']:>7.1f} "
              f"{row['fanout_lost']:>4} | {single['errors'] + batch['errors']:>6}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
