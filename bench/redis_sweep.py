"""How long one cleanup sweep holds Redis, with many tasks kept and with many falling due at once.

Every script call holds Redis (and so every daemon of the group) while it runs. Three cases,
each with `--tasks` tasks (100,000 by default) in a fresh keyspace:

  kept:    all finished, stale-seconds 60, retention one day, swept an hour later: nothing is
           due, but every task is past the smallest horizon (what the previous layout read);
  expire:  the same tasks swept a day later: every one is removed;
  stale:   as many active tasks, stale-seconds 60, swept two minutes later: every one is
           marked stale.

For each: the number of sweep script calls, the longest one and their sum as Redis measured
them (the EVALSHA line of INFO commandstats, read before and after each call: the same
microseconds SLOWLOG gives, without its length limit, which the commands a script runs
would overflow) and as the client saw them (EVALSHA round trip, reply decoding included).
Also, as a check on the write path, the Redis time per event of the APPLY calls that loaded
the tasks (batches of 1,000 new tasks) and of 10,000 progress events for existing tasks
(batches of 100); and where the code has sweep queues, the calls that file the tasks of a
keyspace of the previous layout.

The code measured is the `progressistad` package of this checkout, and with `--baseline DIR`
also the one in DIR, alternating, each in its own process:

    git archive main progressistad | tar -x -C /tmp/sweep-base
    python bench/redis_sweep.py --baseline /tmp/sweep-base --repeats 5
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

HERE = Path(__file__).resolve().parent
T0 = 1_700_000_000.0
BATCH = 1000


async def script_seconds(client) -> float:
    """Seconds Redis has spent running scripts so far (INFO commandstats: EVALSHA and EVAL)."""
    stats = await client.info("commandstats")
    return sum(stats.get(f"cmdstat_{name}", {}).get("usec", 0) for name in ("evalsha", "eval")) / 1e6


async def load(store, count: int, status: str) -> float:
    """Add `count` new tasks with `status` at T0; Redis seconds per event of the APPLY calls."""
    before = await script_seconds(store.client)
    for first in range(0, count, BATCH):
        events = [{"task_id": f"t{i}", "status": status} for i in range(first, min(count, first + BATCH))]
        await store.apply(events, T0, count + BATCH)
    return (await script_seconds(store.client) - before) / count


async def update(store, count: int) -> float:
    """Progress events for tasks that exist, batches of 100 at T0 + 1: Redis seconds per event."""
    before = await script_seconds(store.client)
    events = 0
    for first in range(0, min(count, 10000), 100):
        await store.apply([{"task_id": f"t{i}", "n": 1} for i in range(first, first + 100)],
                          T0 + 1, count + BATCH)
        events += 100
    return (await script_seconds(store.client) - before) / events


async def sweep(store, now: float, policy) -> Dict[str, float]:
    """One whole sweep (in steps where the code has them): each script call's time inside Redis
    (the EVALSHA's own entry of INFO commandstats, read before and after it) and round trip."""
    from progressistad import service

    limit = getattr(service, "SWEEP_CHUNK", None)
    stepped = "limit" in inspect.signature(store.sweep).parameters
    inside, round_trips, acted = [], [], 0
    while True:
        before = await script_seconds(store.client)
        started = time.perf_counter()
        if stepped:
            upserted, removed, more = await store.sweep(now, policy, limit=limit)
        else:
            (upserted, removed), more = await store.sweep(now, policy), False
        round_trips.append(time.perf_counter() - started)
        inside.append(await script_seconds(store.client) - before)
        acted += len(upserted) + len(removed)
        if not more:
            break
    return {"calls": len(round_trips), "acted": acted,
            "redis_max": max(inside), "redis_sum": sum(inside),
            "client_max": max(round_trips), "client_sum": sum(round_trips)}


async def upgrade(store) -> Dict[str, float]:
    """Turn the keyspace into the previous layout's (no sweep queues, every task in `updated`),
    then time the calls that file its tasks, as the first upgraded daemon makes at start."""
    from progressistad.cluster.store import record_to_wire
    from progressistad.service import SWEEP_CHUNK

    client, prefix = store.client, store.prefix
    await client.delete(*(prefix + name for name in ("layout", "sweep:active", "sweep:stale",
                                                     "sweep:finished")))
    raws = await client.hgetall(prefix + "tasks")
    await client.zadd(prefix + "updated",
                      {member: record_to_wire(raw)["updated_at"] for member, raw in raws.items()})
    inside, round_trips, filed, settled = [], [], 0, False
    while not settled:
        before = await script_seconds(client)
        started = time.perf_counter()
        count, settled = await store.upgrade_layout(SWEEP_CHUNK)
        round_trips.append(time.perf_counter() - started)
        inside.append(await script_seconds(client) - before)
        filed += count
    return {"filed": filed, "calls": len(inside), "redis_max": max(inside),
            "redis_sum": sum(inside), "client_max": max(round_trips)}


async def child(url: str, tasks: int) -> Dict[str, object]:
    """Measure the code on sys.path against the redis-server at `url`."""
    import progressistad
    from progressistad.cluster.store import RedisTaskStore, connect
    from progressistad.core.store import SweepPolicy

    client = connect(url, 120.0)
    result: Dict[str, object] = {"code": str(Path(progressistad.__file__).parent.parent)}
    policy = SweepPolicy(retention_seconds=86400, stale_seconds=60)
    try:
        for case, status, later in (("kept", "close", 3600), ("expire", "close", 86400 + 10),
                                    ("stale", "start", 120)):
            await client.flushdb()
            store = RedisTaskStore(client, "bench:")
            if hasattr(store, "upgrade_layout"):
                await store.upgrade_layout()
            result[f"{case}_apply_us"] = 1e6 * await load(store, tasks, status)
            if case == "stale":
                result["update_us"] = 1e6 * await update(store, tasks)
            if case == "kept" and hasattr(store, "upgrade_layout"):
                result["upgrade"] = await upgrade(store)
            result[case] = await sweep(store, T0 + later, policy)
        await client.flushdb()
    finally:
        await client.close()
    return result


def run_child(code: str, url: str, tasks: int) -> Dict[str, object]:
    env = dict(os.environ, PYTHONPATH=code, PYTHONDONTWRITEBYTECODE="1")
    out = subprocess.run([sys.executable, __file__, "--child", url, "--tasks", str(tasks)],
                         env=env, cwd="/", capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        raise RuntimeError(f"measuring {code} failed:\n{out.stderr}")
    return json.loads(out.stdout)


def spread(values: List[float], scale: float, fmt: str) -> str:
    """Median and range, e.g. `12.3 (11.9-13.0)`."""
    scaled = [v * scale for v in values]
    return (f"{statistics.median(scaled):{fmt}} "
            f"({min(scaled):{fmt}}-{max(scaled):{fmt}})")


def report(label: str, rows: List[Dict[str, object]]) -> None:
    print(f"\n{label}: {rows[0]['code']}")
    apply_us = [r[f"{c}_apply_us"] for r in rows for c in ("kept", "expire", "stale")]
    print(f"  APPLY, batches of {BATCH} new tasks: Redis {spread(apply_us, 1, '.1f')} us per event;"
          f" batches of 100 updates: {spread([r['update_us'] for r in rows], 1, '.1f')} us per event")
    if "upgrade" in rows[0]:
        cells = [r["upgrade"] for r in rows]
        print(f"  upgrade: {cells[0]['filed']} tasks of the previous layout filed in "
              f"{cells[0]['calls']} calls; longest call: "
              f"Redis {spread([c['redis_max'] for c in cells], 1e3, '.2f')} ms, "
              f"client {spread([c['client_max'] for c in cells], 1e3, '.2f')} ms; all calls: "
              f"Redis {spread([c['redis_sum'] for c in cells], 1e3, '.1f')} ms")
    for case in ("kept", "expire", "stale"):
        cells = [r[case] for r in rows]
        calls = sorted({c["calls"] for c in cells})
        acted = sorted({c["acted"] for c in cells})
        print(f"  {case:>6}: {'/'.join(map(str, calls))} call(s), {'/'.join(map(str, acted))} acted on;"
              f" longest call: Redis {spread([c['redis_max'] for c in cells], 1e3, '.2f')} ms,"
              f" client {spread([c['client_max'] for c in cells], 1e3, '.2f')} ms;"
              f" whole sweep: Redis {spread([c['redis_sum'] for c in cells], 1e3, '.2f')} ms,"
              f" client {spread([c['client_sum'] for c in cells], 1e3, '.2f')} ms")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=100000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline", metavar="DIR", help="a directory holding an older progressistad")
    parser.add_argument("--child", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(asyncio.run(child(args.child, args.tasks))))
        return 0

    sys.path.insert(0, str(HERE))
    import harness  # noqa: F401  (puts this checkout on sys.path)
    from redis_ingest import redis_server

    codes = [("current", str(HERE.parent))]
    if args.baseline:
        codes.insert(0, ("baseline", str(Path(args.baseline).resolve())))
    print(f"# redis sweep: {args.tasks} tasks, {args.repeats} repeat(s), Python "
          f"{sys.version.split()[0]}, load average {os.getloadavg()[0]:.2f} at start")
    rows: Dict[str, List[Dict[str, object]]] = {label: [] for label, _ in codes}
    with redis_server([]) as url:
        for _ in range(args.repeats):
            for label, code in codes:
                rows[label].append(run_child(code, url, args.tasks))
    for label, _ in codes:
        report(label, rows[label])
    print(f"\n# load average {os.getloadavg()[0]:.2f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
