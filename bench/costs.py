"""Cost growth, in process against the pure store and hub: one cleanup sweep, one snapshot,
and the cost of each event and each flush, at 1k, 10k and 100k tasks; and what telemetry
adds: events with metrics and log lines against plain ones, a series sample, the bytes a task
with full telemetry holds, the bytes of a delta message with and without telemetry, and
where a batched event's CPU goes, stage by stage, with and without telemetry.

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
import tracemalloc
from typing import Callable, Dict, List, Sequence

import harness  # noqa: F401  (puts the checkout on sys.path when run from bench/)

from progressistad import contract
from progressistad.web.hub import Hub
from progressistad.service import SWEEP_CHUNK, TaskService
from progressistad.core.schemas import load_events, parse_json
from progressistad.core.store import SweepPolicy, Task, TaskStore
from progressistad.core.wirejson import dumps

START = 1_800_000_000.0
EVENTS_TIMED = 20000
CHANGED_PER_FLUSH = 100
LOG_LINE = "epoch 3/10 step 1200: loss 0.4213, accuracy 0.8812, 212 samples/s, eta 00:04:31"[:80]
LOG_EVERY = 10
"""One event in LOG_EVERY carries a log line."""


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


def plain_event(i: int, tasks: int) -> Dict:
    return {"task_id": f"bench-{(i * 7919) % tasks}", "n": i + 10}


def telemetry_event(i: int, tasks: int) -> Dict:
    """A plain event with 4 metrics, and in one of LOG_EVERY a log line."""
    event = plain_event(i, tasks)
    event["metrics"] = {"loss": 1.0 / (i + 1), "accuracy": 0.5 + i / (4 * EVENTS_TIMED),
                        "lr": 0.001, "epoch": i // 1000}
    if i % LOG_EVERY == 0:
        event["log"] = LOG_LINE
    return event


def event_cost(store: TaskStore, tasks: int, make: Callable[[int, int], Dict] = plain_event) -> float:
    """Seconds per single event through the service (store apply + hub publish)."""
    service = TaskService(store, clock=lambda: START + 10_000, policy=SweepPolicy())
    service.add_listener(make_hub(store, 0).publish)
    events = [load_events(make(i, tasks)).events for i in range(EVENTS_TIMED)]

    async def ingest_all() -> float:
        started = time.process_time()
        for event in events:
            await service.ingest(event)
        return time.process_time() - started

    return asyncio.run(ingest_all()) / EVENTS_TIMED


def validate_cost(tasks: int, make: Callable[[int, int], Dict]) -> float:
    """Seconds per single event through validation (`schemas.load_events`, the fast path)."""
    raw = [make(i, tasks) for i in range(EVENTS_TIMED)]
    started = time.process_time()
    for event in raw:
        load_events(event)
    return (time.process_time() - started) / EVENTS_TIMED


def alternating(repeat: int, runs: Dict[str, Callable[[], float]]) -> Dict[str, float]:
    """Best of `repeat` rounds of each run, taken in turn so that other work on the machine
    falls on all of them alike."""
    best_of = {name: float("inf") for name in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            best_of[name] = min(best_of[name], run())
    return best_of


def sample_cost(store: TaskStore, ids: Sequence[str]) -> float:
    """Seconds per task of one `TaskStore.sample` of `ids` (after each got an event)."""
    events = load_events([telemetry_event(i, len(store)) | {"task_id": t} for i, t in enumerate(ids)])
    store.apply(events.events, START + 30_000)
    started = time.process_time()
    store.sample(START + 30_000, ids)
    return (time.process_time() - started) / len(ids)


def full_telemetry_bytes() -> Dict[str, float]:
    """One task with 4 metrics, a full log tail of LOG_LINE and a full series: the bytes its
    telemetry adds to the task as tracemalloc counts them, against the store's estimate
    (which counts series and tail, not the metrics themselves)."""
    store = TaskStore()
    tracemalloc.start()
    store.apply(load_events(plain_event(0, 1)).events, START)
    before = tracemalloc.get_traced_memory()[0]
    for i in range(contract.LOG_TAIL_LINES):
        event = telemetry_event(i * LOG_EVERY, 1) | {"log": f"{i:04d}" + LOG_LINE[4:]}
        store.apply(load_events(event).events, START + i)
    for i in range(contract.SERIES_MAX_POINTS):
        store.sample(START + i, ["bench-0"])
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return {"traced": held, "estimate": store.telemetry_bytes}


BATCH = 100
FLUSH_EVERY = 72
"""Batches between two flushes: 7,200 events, as at 72,000 events/s with a 0.1 s interval."""


def batch_stages(make: Callable[[int, int], Dict], tasks: int = 1000,
                 batches: int = 200) -> Dict[str, float]:
    """CPU µs per event of each stage a batch of BATCH events goes through, with 5 dashboards:
    JSON parse, validation, store and publish, and per flush the series samples and the
    delta sent; and the request body's bytes per event."""
    store = build_store(tasks)
    hub = make_hub(store, 5)
    service = TaskService(store, clock=lambda: START + 10_000, policy=SweepPolicy())
    service.add_listener(hub.publish)
    bodies = [json.dumps([make(i, tasks) for i in range(k * BATCH, (k + 1) * BATCH)]).encode()
              for k in range(batches)]
    spent = dict.fromkeys(("parse", "validate", "ingest", "sample", "flush"), 0.0)
    loop = asyncio.new_event_loop()
    try:
        for k, body in enumerate(bodies):
            started = time.process_time()
            payload = parse_json(body)
            parsed = time.process_time()
            events = load_events(payload).events
            validated = time.process_time()
            loop.run_until_complete(service.ingest(events))
            ingested = time.process_time()
            spent["parse"] += parsed - started
            spent["validate"] += validated - parsed
            spent["ingest"] += ingested - validated
            if k % FLUSH_EVERY == FLUSH_EVERY - 1:
                store.sample(START + 10_000, set(hub._pending.upserted))
                sampled = time.process_time()
                hub.flush()
                spent["sample"] += sampled - ingested
                spent["flush"] += time.process_time() - sampled
    finally:
        loop.close()
    total = batches * BATCH
    stages = {name: seconds / total * 1e6 for name, seconds in spent.items()}
    stages["body_bytes"] = sum(map(len, bodies)) / total
    return stages


def delta_bytes(tasks: int = 1000, changed: int = CHANGED_PER_FLUSH) -> Dict[str, float]:
    """Bytes of one delta message carrying `changed` tasks of `tasks`, plain and with 4 metrics
    and a log line in one of LOG_EVERY (what one WebSocket frame to each dashboard holds)."""
    sizes = {}
    for name, make in (("plain", plain_event), ("telemetry", telemetry_event)):
        store = build_store(tasks)
        hub = make_hub(store, 0)
        events = load_events([make(i, changed) for i in range(changed * LOG_EVERY)]).events
        changes = store.apply(events, START + 40_000)
        sizes[name] = len(hub._delta_message(changes))
    sizes["tasks"] = changed
    return sizes


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
    per_event = alternating(repeat, {
        "event_us": lambda: event_cost(store, tasks),
        "event_telemetry_us": lambda: event_cost(store, tasks, telemetry_event),
        "validate_us": lambda: validate_cost(tasks, plain_event),
        "validate_telemetry_us": lambda: validate_cost(tasks, telemetry_event),
    })
    row.update((name, seconds * 1e6) for name, seconds in per_event.items())
    ids = [f"bench-{i}" for i in range(min(CHANGED_PER_FLUSH, tasks))]
    row["sample_us"] = min(sample_cost(store, ids) for _ in range(repeat)) * 1e6
    late = START + 100_000
    stale_rule = SweepPolicy(stale_seconds=60)
    all_due = sweep_in_steps(store, late, stale_rule)
    row["sweep_all_due_ms"] = all_due["total"] * 1e3
    row["sweep_all_due_step_ms"] = all_due["longest"] * 1e3
    row["sweep_all_kept_ms"] = best(repeat, lambda: store, lambda s: s.sweep(late + 1, stale_rule)) * 1e3
    return row


HEADER_FIELDS = ("tasks", "sweep_nothing_due_ms", "sweep_all_due_ms", "sweep_all_due_step_ms",
                 "sweep_all_kept_ms", "snapshot_ms", "dumps_ms",
                 "snapshot_bytes", "event_us", "event_telemetry_us", "sample_us")



def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--watchers", type=int, nargs="+", default=[0, 5, 100, 1000],
                        help="dashboard counts for the flush cost (in-process null subscribers)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    for tasks in args.tasks:
        print(json.dumps(measure(tasks, args.repeat, args.watchers)), flush=True)
    print(json.dumps({"full_telemetry_bytes": full_telemetry_bytes()}), flush=True)
    print(json.dumps({"delta_bytes": delta_bytes()}), flush=True)
    print(json.dumps({"batch_stages": {"plain": batch_stages(plain_event),
                                       "telemetry": batch_stages(telemetry_event)}}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
