"""The run history in process: how fast the worker writes runs, the database file's size per
run, and GET /history/jobs and GET /history (the backend's query plus the JSON the handler
would write) with 100,000 runs in the database.

Runs look like a training script's: description, unit, four metrics, a postfix, three meta
keys; one run in ten is an error carrying its 20 last log lines of 80 characters. Query
times are wall times awaited from the event loop (the hop to the worker thread included),
best and median of --repeat calls.

    python bench/history.py [--runs 100000] [--jobs 200] [--repeat 7] [--redis-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import os
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


def realistic_runs(count: int, jobs: int) -> List[Dict[str, Any]]:
    runs = []
    for i in range(count):
        job = f"train-{i % jobs:04d}.py:epoch"
        ended = START + i * 3.7
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


def main(argv: List[str] = sys.argv[1:]) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=100000)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--redis-url", help="also measure the Redis backend on this server")
    args = parser.parse_args(argv)
    report(f"SQLite file, {args.runs:,} runs of {args.jobs} jobs",
           asyncio.run(measure_sqlite(args.runs, args.jobs, args.repeat)))
    if args.redis_url:
        report(f"Redis, {args.runs:,} runs of {args.jobs} jobs",
               asyncio.run(measure_redis(args.redis_url, args.runs, args.jobs, args.repeat)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
