"""`progressistad --import-state FILE`: a state file's tasks written into the group's Redis."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any, Dict, List

from progressistad.cluster.link import SOCKET_TIMEOUT, safe_url, unreachable
from progressistad.cluster.records import InvalidState
from progressistad.cluster.store import UNAVAILABLE_ERRORS, RedisTaskStore, connect
from progressistad.core.statefile import restored_status
from progressistad.service import Clock


def read_state_file(path: str) -> List[Dict[str, Any]]:
    """The tasks of a JSON state file, ours or the earlier build's; ValueError says what is wrong."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror}") from None
    except ValueError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from None
    tasks = data.get("tasks") if isinstance(data, dict) else None
    if not isinstance(tasks, dict):
        raise ValueError(f"{path} is not a progressista state file: no \"tasks\" object")
    loaded = []
    for task_id, task in tasks.items():
        if not isinstance(task, dict):
            raise ValueError(f"{path}: task {task_id!r} is not an object")
        task = dict(task, task_id=task.get("task_id", task_id))
        task["status"] = restored_status(task.get("status"))
        loaded.append(task)
    return loaded


async def import_state(url: str, prefix: str, path: str, clock: Clock = time.time) -> int:
    """Load a state file into the group's Redis store; every running daemon resyncs."""
    tasks = read_state_file(path)
    backend = RedisTaskStore(connect(url, SOCKET_TIMEOUT), prefix)
    try:
        try:
            return await backend.import_tasks(tasks, clock())
        except InvalidState as error:
            raise ValueError(f"{path}: {error}") from None
        except UNAVAILABLE_ERRORS as error:
            raise unreachable(url, error) from None
    finally:
        await backend.close()


def run_import(settings: Any, path: str) -> int:
    """`progressistad --import-state FILE`: load the file into Redis; the exit status."""
    if not settings.redis_url:
        print("progressistad: --import-state needs --redis-url (or PROGRESSISTA_REDIS_URL)",
              file=sys.stderr)
        return 2
    try:
        count = asyncio.run(import_state(settings.redis_url, settings.redis_prefix, path))
    except (ValueError, ConnectionError) as error:
        print(f"progressistad: {error}", file=sys.stderr)
        return 1
    print(f"imported {count} task(s) from {path} into "
          f"{safe_url(settings.redis_url)} (prefix {settings.redis_prefix!r})")
    return 0
