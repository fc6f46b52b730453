"""Runs and waits for the history tests."""

from __future__ import annotations

import asyncio
from typing import Any, Dict, Optional

from progressistad.history import records

T0 = 1_700_000_000.0


def task(task_id: str = "t", *, status: str = "update", created_at: float = T0,
         updated_at: Optional[float] = None, done_at: Optional[float] = None,
         **fields: Any) -> Dict[str, Any]:
    """A task as served, with the telemetry fields."""
    updated_at = created_at if updated_at is None else updated_at
    served = {"task_id": task_id, "desc": None, "total": None, "n": 0, "unit": None,
              "status": status, "timestamp": None, "meta": None, "created_at": created_at,
              "updated_at": updated_at, "done_at": done_at, "stale_at": None, "rate": None,
              "eta": None, "metrics": None, "postfix": None, "last_log": None, "log_lines": 0}
    served.update(fields)
    return served


def run(job: str = "job", status: str = "close", ended_at: float = T0, duration: float = 10.0,
        task_id: Optional[str] = None, **fields: Any) -> Dict[str, Any]:
    """The record of one run of `job` that ended at `ended_at` after `duration` seconds."""
    served = task(task_id or f"{job}:host:1", status="close" if status == "close" else "error",
                  created_at=ended_at - duration, updated_at=ended_at, done_at=ended_at,
                  meta={"job": job}, **fields)
    return records.run_for(served, status, log_tail=["a line"])


async def until(predicate, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)
