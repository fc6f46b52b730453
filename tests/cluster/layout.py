"""The Redis key layout seen from outside: its invariant, and keyspaces the previous release left.

The previous layout (before the sweep queues) kept every task's updated_at in the
`updated` zset, had no `layout` key and no `sweep:*` zsets; everything else (the
task hash, `finished`, `seq`, the stream) is unchanged. A daemon of that release
still running in the group writes `updated` and leaves the queues as they were.
"""

from __future__ import annotations

from typing import Dict, Tuple

from progressistad.cluster.records import decode_ids, fragment, record_to_wire
from progressistad.core.store import sweep_queue

QUEUE_KEYS = {"active": "sweep:active", "stale": "sweep:stale", "finished": "sweep:finished"}


async def layout_problems(client, prefix: str) -> list:
    """What breaks the layout's invariant: every task in the queue of its status only, at its
    updated_at; nothing else in the queues; no `updated` zset; the layout version set."""
    tasks = {wire["task_id"]: wire for wire in
             (record_to_wire(raw) for raw in await client.hvals(prefix + "tasks"))}
    filed: Dict[str, Tuple[str, float]] = {}
    problems = []
    for queue, key in QUEUE_KEYS.items():
        for member, score in await client.zrange(prefix + key, 0, -1, withscores=True):
            task_id = decode_ids(member)[0]
            if task_id in filed:
                problems.append(f"{task_id!r} in {filed[task_id][0]} and {queue}")
            filed[task_id] = (queue, score)
    for task_id, wire in tasks.items():
        expected = (sweep_queue(wire["status"]), wire["updated_at"])
        if filed.pop(task_id, None) != expected:
            problems.append(f"{task_id!r} not filed as {expected}")
    problems += [f"{task_id!r} filed but not a task" for task_id in filed]
    if await client.exists(prefix + "updated"):
        problems.append("the previous layout's `updated` zset is still there")
    if await client.get(prefix + "layout") != b"2":
        problems.append("no layout version 2")
    return problems


async def as_previous_layout(client, prefix: str) -> None:
    """Turn the keyspace into what the previous release would hold for the same tasks."""
    await client.delete(prefix + "layout", *(prefix + key for key in QUEUE_KEYS.values()))
    tasks = [record_to_wire(raw) for raw in await client.hvals(prefix + "tasks")]
    if tasks:
        await client.zadd(prefix + "updated",
                          {fragment(t["task_id"]): t["updated_at"] for t in tasks})


async def as_previous_release_wrote(client, prefix: str, task_id: str) -> None:
    """Leave `task_id` as a daemon of the previous release would after writing it (an event,
    or an import): in `updated`, and in no sweep queue, as if it had created the task."""
    member = fragment(task_id)
    raw = await client.hget(prefix + "tasks", member)
    await client.zadd(prefix + "updated", {member: record_to_wire(raw)["updated_at"]})
    for key in QUEUE_KEYS.values():
        await client.zrem(prefix + key, member)


async def as_previous_release_removed(client, prefix: str, task_id: str) -> None:
    """Remove `task_id` as the previous release did: from the hash and its own zsets only."""
    member = fragment(task_id)
    await client.hdel(prefix + "tasks", member)
    await client.zrem(prefix + "updated", member)
    await client.zrem(prefix + "finished", member)


async def as_previous_release_marked_stale(client, prefix: str, task_id: str) -> None:
    """Move a stale task back to the active queue, where the previous release's sweep leaves
    a task it marks stale."""
    member = fragment(task_id)
    score = await client.zscore(prefix + QUEUE_KEYS["stale"], member)
    await client.zrem(prefix + QUEUE_KEYS["stale"], member)
    await client.zadd(prefix + QUEUE_KEYS["active"], {member: score})
