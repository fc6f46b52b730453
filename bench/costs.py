"""Cost growth, in process against the pure store and hub: one cleanup sweep, one snapshot,
and the cost of each event and each flush, at 1k, 10k and 100k tasks.

No sockets and no daemon, so these figures are free of HTTP and load-generator noise.
Times are this process's CPU time (time.process_time), not wall time, so that other
work on a shared machine does not count; each is the best of --repeat runs.

    python bench/costs.py --tasks 1000 10000 100000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Callable, Dict, List

import harness  # noqa: F401  (puts the checkout on sys.path when run from bench/)

from progressistad.web.hub import Hub
from progressistad.service import SWEEP_CHUNK, TaskService
from progressistad.core.store import SweepPolicy, TaskStore
from progressistad.core.wirejson import dumps

START = 1_800_000_000.0
EVENTS_TIMED = 20000
CHANGED_PER_FLUSH = 100


def build_store(tasks: int) -> TaskStore:
    """`tasks` tasks, each started and updated once, one second apart per batch of 1000."""
    store = TaskStore(max_tasks=tasks + EVENTS_TIMED)
    for start in range(0, tasks, 1000):
        batch = [harness.bench_task(i) for i in range(start, min(tasks, start + 1000))]
        store.apply(batch, START + start / 1000)
        store.apply([{"task_id": e["task_id"], "n": 1} for e in batch], START + start / 1000 + 0.5)
    return store


def best(repeat: int, prepare: Callable[[], object], run: Callable[[object], object]) -> float:
    """Fastest of `repeat` timed calls of `run(prepare())`, in seconds."""
    fastest = float("inf")
    for _ in range(repeat):
        subject = prepare()
        started = time.process_time()
        run(subject)
        fastest = min(fastest, time.process_time() - started)
    return fastest


class NullSubscriber:
    """A watcher whose writes complete at once."""

    def __init__(self, protocol: str = "delta") -> None:
        self.protocol = protocol

    def send(self, text: str) -> None:
        return None

    def abort(self, code: int, reason: str) -> None:
        pass


def make_hub(store: TaskStore, watchers: int, protocol: str = "delta") -> Hub:
    hub = Hub(store, interval=0.1, stall_timeout=30, clock=time.monotonic,
              schedule=lambda delay, fn: None)
    for _ in range(watchers):
        hub.subscribe(NullSubscriber(protocol))
    return hub


def event_cost(store: TaskStore, tasks: int) -> float:
    """Seconds per single event through the service (store apply + hub publish)."""
    service = TaskService(store, clock=lambda: START + 10_000, policy=SweepPolicy())
    service.add_listener(make_hub(store, 0).publish)
    events = [[{"task_id": f"bench-{(i * 7919) % tasks}", "n": i + 10}] for i in range(EVENTS_TIMED)]

    async def ingest_all() -> float:
        started = time.process_time()
        for event in events:
            await service.ingest(event)
        return time.process_time() - started

    return asyncio.run(ingest_all()) / EVENTS_TIMED


def sweep_in_steps(store: TaskStore, now: float, policy: SweepPolicy) -> Dict[str, float]:
    """CPU seconds of a sweep run as the daemon runs it (steps of SWEEP_CHUNK): total and
    longest step, the longest the event loop is held."""
    total = longest = 0.0
    while True:
        started = time.process_time()
        changes = store.sweep(now, policy, SWEEP_CHUNK)
        spent = time.process_time() - started
        total += spent
        longest = max(longest, spent)
        if len(changes.upserted) + len(changes.removed) < SWEEP_CHUNK:
            return {"total": total, "longest": longest}


def flush_cost(store: TaskStore, watchers: int, protocol: str = "delta") -> float:
    """Seconds for one flush of CHANGED_PER_FLUSH changed tasks to `watchers` dashboards
    (the snapshot protocol sends every task in every flush)."""
    hub = make_hub(store, watchers, protocol)
    ids = [f"bench-{i}" for i in range(min(CHANGED_PER_FLUSH, len(store)))]
    changes = store.apply([{"task_id": t, "n": time.monotonic()} for t in ids], START + 20_000)
    hub.publish(changes)
    started = time.process_time()
    hub.flush()
    return time.process_time() - started


def measure(tasks: int, repeat: int, watcher_counts: List[int]) -> Dict:
    """Every figure for one task count, on one store built once (the sweep that marks
    every task stale runs last, since it changes them)."""
    store = build_store(tasks)
    snapshot = store.snapshot()
    row = {
        "tasks": tasks,
        "sweep_nothing_due_ms": best(repeat, lambda: store, lambda s: s.sweep(START + 10, SweepPolicy())) * 1e3,
        "snapshot_ms": best(repeat, lambda: store, lambda s: s.snapshot()) * 1e3,
        "dumps_ms": best(repeat, lambda: snapshot, dumps) * 1e3,
        "snapshot_bytes": len(dumps(snapshot)),
    }
    for watchers in watcher_counts:
        row[f"flush_{watchers}_ms"] = min(flush_cost(store, watchers) for _ in range(repeat)) * 1e3
    row["flush_snapshot_protocol_ms"] = min(flush_cost(store, 1, "snapshot") for _ in range(repeat)) * 1e3
    row["event_us"] = min(event_cost(store, tasks) for _ in range(repeat)) * 1e6
    late = START + 100_000
    stale_rule = SweepPolicy(stale_seconds=60)
    all_due = sweep_in_steps(store, late, stale_rule)
    row["sweep_all_due_ms"] = all_due["total"] * 1e3
    row["sweep_all_due_step_ms"] = all_due["longest"] * 1e3
    row["sweep_all_kept_ms"] = best(repeat, lambda: store, lambda s: s.sweep(late + 1, stale_rule)) * 1e3
    return row


HEADER_FIELDS = ("tasks", "sweep_nothing_due_ms", "sweep_all_due_ms", "sweep_all_due_step_ms",
                 "sweep_all_kept_ms", "snapshot_ms", "dumps_ms",
                 "snapshot_bytes", "event_us")



def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--watchers", type=int, nargs="+", default=[0, 5, 100, 1000],
                        help="dashboard counts for the flush cost (in-process null subscribers)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    for tasks in args.tasks:
        print(json.dumps(measure(tasks, args.repeat, args.watchers)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
