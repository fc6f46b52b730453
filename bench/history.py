"""The run history: how fast the worker writes runs, the database file's size per run, GET
/history/jobs and GET /history (the backend's query plus the JSON the handler would write)
with 100,000 runs in the database, all in process; and the real daemon's ingest rate with the
history on against off while 1,000 tasks finish continuously.

Runs look like a training script's: description, unit, four metrics, a postfix, three meta
keys; one run in ten is an error carrying its 20 last log lines of 80 characters. Query
times are wall times awaited from the event loop (the hop to the worker thread included),
best and median of --repeat calls.

Ingest: two daemons as packaged (a state file each; one with the history beside it, the other
with --history-max-runs 0), wrk with bench/runs.lua (each task a start, updates and a close,
then again, in runs of 20 and of 200 events; 50 jobs, so expectations are served too), in alternating rounds (each
taking up the tasks where the last left them); rates, the daemon's CPU time per event (the
history's writer thread included) and the runs it recorded.

    python bench/history.py [--runs 100000] [--jobs 200] [--repeat 7] [--redis-url URL]
                            [--ingest-rounds 3] [--run-events 20 200] [--no-queries]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from typing import Any, Awaitable, Callable, Dict, List

import harness  # noqa: F401  (puts the checkout on sys.path when run from bench/)

from progressistad.core.wirejson import dumps
from progressistad.history import query, records

START = 1_800_000_000.0
APPEND_CHUNK = 1000
"""Runs per append call, as a daemon finishing many tasks at once hands them over."""


RUN_SPACING = 3.7
"""Seconds between the ends of two consecutive runs."""


def realistic_runs(count: int, jobs: int, start: float = START) -> List[Dict[str, Any]]:
    """`count` runs of `jobs` jobs, ending one every RUN_SPACING seconds from `start`."""
    runs = []
    for i in range(count):
        job = f"train-{i % jobs:04d}.py:epoch"
        ended = start + i * RUN_SPACING
        failed = i % 10 == 9
        task = {
            "task_id": f"{job}:gpu-{i % 8:02d}:{4000 + i}:bar-1", "desc": "epoch 3/10",
            "total": 10000, "n": 6100 if failed else 10000, "unit": "it",
            "status": "error" if failed else "close", "created_at": ended - 600 - i % 120,
            "updated_at": ended, "done_at": ended,
            "metrics": {"loss": 0.1234, "acc": 0.9812, "lr": 0.0003, "grad_norm": 1.25},
            "postfix": "loss=0.123, acc=0.981",
            "meta": {"job": job, "host": f"gpu-{i % 8:02d}", "rank": i % 4},
        }
        tail = [f"step {k}: loss 0.{k:04d} " + "x" * 60 for k in range(20)] if failed else ()
        runs.append(records.run_for(task, task["status"], log_tail=tail))
    return runs


async def timed(call: Callable[[], Awaitable[Any]], repeat: int) -> Dict[str, float]:
    """Best and median milliseconds of `repeat` calls (after one untimed warm-up)."""
    await call()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1000)
    return {"best_ms": min(samples), "median_ms": statistics.median(samples)}


async def fill(backend: Any, runs: List[Dict[str, Any]]) -> Dict[str, float]:
    """Append every run in chunks; the loop's cost of the calls and the writer's rate."""
    loop_seconds = 0.0
    started = time.perf_counter()
    for at in range(0, len(runs), APPEND_CHUNK):
        before = time.perf_counter()
        backend.append(runs[at:at + APPEND_CHUNK])
        loop_seconds += time.perf_counter() - before
        await asyncio.sleep(0)
    while backend.health()["queued"]:
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - started
    return {"runs_per_second": len(runs) / elapsed, "seconds": elapsed,
            "loop_us_per_run": loop_seconds / len(runs) * 1e6}


async def queries(backend: Any, jobs: int, repeat: int) -> Dict[str, Dict[str, float]]:
    async def answer(make_query: Callable[[], Any], method: str) -> None:
        dumps(await getattr(backend, method)(make_query()))

    some_job = f"train-{jobs // 2:04d}.py:epoch"
    cases = {
        "/history/jobs (limit 100)": (lambda: query.job_query(), "jobs"),
        "/history/jobs (limit 1000)": (lambda: query.job_query(limit=1000), "jobs"),
        "/history/jobs?job=train-00*": (lambda: query.job_query("train-00*"), "jobs"),
        "/history (limit 100)": (lambda: query.run_query(), "runs"),
        "/history (limit 1000)": (lambda: query.run_query(limit=1000), "runs"),
        "/history?job=J (limit 100)": (lambda: query.run_query(job=some_job), "runs"),
        "/history?status=error (limit 100)": (lambda: query.run_query(status="error"), "runs"),
    }
    figures = {}
    for name, (make_query, method) in cases.items():
        figures[name] = await timed(lambda: answer(make_query, method), repeat)
    names = [f"train-{j:04d}.py:epoch" for j in range(min(jobs, 100))]
    figures["close runs of 100 jobs (expectations)"] = await timed(
        lambda: backend.closes(names), repeat)
    return figures


async def measure_sqlite(count: int, jobs: int, repeat: int) -> Dict[str, Any]:
    from progressistad.history.sqlite import SQLiteHistory

    runs = realistic_runs(count, jobs)
    with tempfile.TemporaryDirectory(prefix="progressista-history-bench-") as directory:
        path = os.path.join(directory, "history.sqlite3")
        backend = SQLiteHistory(path, max_runs=count, clock=lambda: runs[-1]["ended_at"])
        written = await fill(backend, runs)
        figures = await queries(backend, jobs, repeat)
        await backend.close()
        size = os.path.getsize(path)
        reopened = SQLiteHistory(path, max_runs=count)
        figures["/history/jobs (limit 100), just reopened"] = await timed(
            lambda: reopened.jobs(query.job_query()), 1)
        await reopened.close()
    return {"write": written, "bytes_per_run": size / count, "file_bytes": size,
            "json_bytes_per_run": sum(len(dumps(r)) for r in runs) / count, "queries": figures}


async def measure_redis(url: str, count: int, jobs: int, repeat: int) -> Dict[str, Any]:
    from progressistad.cluster.store import connect
    from progressistad.history.redis import RedisHistory

    prefix = f"bench-{os.getpid()}:"
    client = connect(url, 10.0)
    runs = realistic_runs(count, jobs)
    backend = RedisHistory(client, prefix, max_runs=count, clock=lambda: runs[-1]["ended_at"])
    try:
        written = await fill(backend, runs)
        memory = (await client.info("memory"))["used_memory"]
        figures = await queries(backend, jobs, repeat)
        await backend.delete(None, None)
        freed = memory - (await client.info("memory"))["used_memory"]
    finally:
        await backend.close()
        await (getattr(client, "aclose", None) or client.close)()
    return {"write": written, "bytes_per_run": freed / count, "queries": figures}


def report(title: str, result: Dict[str, Any]) -> None:
    write = result["write"]
    print(f"\n{title}")
    print(f"  write: {write['runs_per_second']:,.0f} runs/s on the worker "
          f"({write['seconds']:.2f} s), append {write['loop_us_per_run']:.2f} us/run on the loop")
    print(f"  size: {result['bytes_per_run']:,.0f} bytes per run"
          + (f" (JSON of a run: {result['json_bytes_per_run']:,.0f})"
             if "json_bytes_per_run" in result else ""))
    for name, times in result["queries"].items():
        print(f"  {name:<42} best {times['best_ms']:7.2f} ms  median {times['median_ms']:7.2f} ms")


INGEST_TASKS = 1000
INGEST_CONNECTIONS = 8
RUN_EVENTS = (20, 200)
"""Events per run in bench/runs.lua (a start, updates, a close): short runs make the history's
share of the work largest, since its cost is per run."""
ROUND_SECONDS = 3
"""Each wrk run takes up the tasks where the last one left them; a longer round leaves fewer
seams (a few events in flight at its end are skipped)."""


def measure_ingest(rounds: int, run_events: List[int]) -> List[Dict[str, Any]]:
    """History on against off, single events and batches of 100, for each run length, in
    alternating rounds of ROUND_SECONDS: one row each, then the runs recorded."""
    rows = []
    with harness.daemon() as on, harness.daemon(["--history-max-runs", "0"]) as off:
        for steps in run_events:
            for batch in (1, 100):
                with_history, without = side_by_side([on, off], batch, rounds, steps)
                rows.append({"batch": batch, "steps": steps, "on": with_history,
                             "off": without, "ratio": with_history["events"] / without["events"],
                             "cpu_ratio": without["cpu_us"] / with_history["cpu_us"]})
        recorded = on.health()["history"]
        rows.append({"recorded": recorded["runs"], "dropped": recorded["dropped"]})
    return rows


def side_by_side(servers: List[Any], batch: int, rounds: int,
                 steps: int) -> List[Dict[str, float]]:
    """Events per second and the server's CPU time per event over `rounds` rounds each."""
    sent = [0 for _ in servers]
    cpu = [0.0 for _ in servers]
    seconds = [0.0 for _ in servers]
    errors = [0 for _ in servers]
    for _ in range(max(1, rounds)):
        for index, server in enumerate(servers):
            before = harness.cpu_seconds(server.pid)
            done = harness.wrk(server.url, INGEST_TASKS, batch, ROUND_SECONDS, INGEST_CONNECTIONS,
                               script="runs.lua", script_env={"STEPS": str(steps),
                                                              "START": str(sent[index])})
            cpu[index] += harness.cpu_seconds(server.pid) - before
            sent[index] += done["requests"] * batch
            seconds[index] += done["requests"] / done["rps"] if done["rps"] else 0.0
            errors[index] += done["errors"]
    for index, server in enumerate(servers):
        # The writer may still hold runs of these rounds: its CPU for them counts here.
        before = harness.cpu_seconds(server.pid)
        while server.health().get("history", {}).get("queued", 0):
            time.sleep(0.05)
        cpu[index] += harness.cpu_seconds(server.pid) - before
    return [{"events": events / elapsed, "cpu_us": used / events * 1e6, "errors": failed}
            for events, elapsed, used, failed in zip(sent, seconds, cpu, errors)]


def report_ingest(rows: List[Dict[str, Any]]) -> None:
    print(f"\nIngest, {INGEST_TASKS:,} tasks finishing continuously, real daemon, history on "
          f"against off")
    for row in rows[:-1]:
        on, off = row["on"], row["off"]
        print(f"  {row['steps']:>4} events a run, batch {row['batch']:>3}: on {on['events']:>9,.0f} ev/s {on['cpu_us']:7.1f} us CPU/ev"
              f" | off {off['events']:>9,.0f} ev/s {off['cpu_us']:7.1f} us CPU/ev"
              f" | ratio {row['ratio']:.3f} (CPU {row['cpu_ratio']:.3f})"
              f" | errors {on['errors'] + off['errors']}")
    print(f"  runs recorded: {rows[-1]['recorded']:,}, dropped: {rows[-1]['dropped']:,}")


def main(argv: List[str] = sys.argv[1:]) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=100000)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--redis-url", help="also measure the Redis backend on this server")
    parser.add_argument("--ingest-rounds", type=int, default=3,
                        help=f"rounds of {ROUND_SECONDS} s per side for the ingest rows; 0 skips them")
    parser.add_argument("--run-events", type=int, nargs="+", default=list(RUN_EVENTS),
                        help="events per run of the ingest rows (default %(default)s)")
    parser.add_argument("--no-queries", action="store_true",
                        help="skip the in-process figures (writes, size, queries)")
    args = parser.parse_args(argv)
    if not args.no_queries:
        report(f"SQLite file, {args.runs:,} runs of {args.jobs} jobs",
               asyncio.run(measure_sqlite(args.runs, args.jobs, args.repeat)))
        if args.redis_url:
            report(f"Redis, {args.runs:,} runs of {args.jobs} jobs",
                   asyncio.run(measure_redis(args.redis_url, args.runs, args.jobs, args.repeat)))
    if args.ingest_rounds > 0:
        if not shutil.which("wrk"):
            print("wrk is not installed (Debian package wrk): apt-get install wrk", file=sys.stderr)
            return 1
        report_ingest(measure_ingest(args.ingest_rounds, args.run_events))
    return 0


if __name__ == "__main__":
    sys.exit(main())
