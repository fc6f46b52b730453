"""What the Redis tests share: a whole sweep made of limited script calls, as the service does."""

from __future__ import annotations

from typing import Set

from progressistad.core.store import Changes


async def sweep_in_steps(store, now, policy, limit) -> Changes:
    """Script calls of at most `limit` tasks until one comes back short, as RedisTaskService does;
    no step may act on a task an earlier step acted on."""
    changes = Changes()
    acted: Set[str] = set()
    while True:
        upserted, removed, more = await store.sweep(now, policy, limit=limit)
        assert limit is None or len(upserted) + len(removed) <= limit
        assert limit is not None or not more
        stale = {task.task_id for task in upserted}
        assert not stale & set(removed), f"marked stale and removed: {sorted(stale & set(removed))}"
        step = stale | set(removed)
        assert not step & acted, f"acted on again: {sorted(step & acted)}"
        acted |= step
        for task in upserted:
            changes.add_upsert(task.task_id)
        for task_id in removed:
            changes.add_removal(task_id)
        if not more:
            return changes
