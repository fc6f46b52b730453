"""Run records: what the history keeps of a task each time it ends, and when a run ends.

Pure: no clock, no I/O. `step` decides from a task's status before and after
one change (one event applied, a removal, a sweep) whether that change ends a
run and whether it begins one; `run_for` makes the record of an ended run from
the task as served; `ended_runs` does both for a caller holding the two served
forms. A task's runs need one float besides its served fields: when its
current run began (`run_started_at`; None means its `created_at`).
"""

from __future__ import annotations

import hashlib
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Sequence

from progressistad import contract

Run = Dict[str, Any]
"""A run as stored and served: the keys of `RUN_FIELDS`."""

ABANDONED = contract.RUN_ABANDONED
RUN_STATUSES = contract.RUN_STATUSES
FAILED_STATUSES = frozenset((contract.ERROR, ABANDONED))
"""Outcomes /history/jobs counts as `failed`."""
LOG_TAIL_LINES = 20
"""Log lines a failed or abandoned run keeps."""

RUN_FIELDS = contract.RUN_FIELDS


class Step(NamedTuple):
    """What one change of a task does to its runs."""

    ends: Optional[str] = None
    """Outcome of the run the change ends (close, error, abandoned), or None."""
    from_before: bool = False
    """The ended run is the task as it was before the change (a removal, or a `start` that
    abandons it); else as it is after."""
    begins: bool = False
    """A new run begins with the change (`run_start` says when)."""


_NOTHING = Step()


def _decide(before: Optional[str], after: Optional[str]) -> Step:
    running = before is not None and before not in contract.FINISHED_STATUSES
    if after is None:
        return Step(ABANDONED, from_before=True) if running else _NOTHING
    ending = after if after in contract.FINISHED_STATUSES else None
    if before is None:
        return Step(ending, begins=True)
    if not running:
        # A repeated close or error (a client retrying) ends nothing; anything else reactivates.
        return _NOTHING if ending else Step(begins=True)
    if ending:
        return Step(ending)
    if after == contract.START:
        return Step(ABANDONED, from_before=True, begins=True)
    return _NOTHING


_STEPS = {(before, after): _decide(before, after)
          for before in (None,) + contract.STATUSES for after in (None,) + contract.STATUSES}


def step(before: Optional[str], after: Optional[str]) -> Step:
    """What a change from status `before` to `after` does to the runs (None: absent).

    Per change, not per batch: a batch may end and begin several runs of one task.
    """
    return _STEPS[(before, after)]


def run_start(before: Optional[str], after: Mapping[str, Any]) -> float:
    """When the run a change begins began: a task's first run at its `created_at`, any later
    one at the change (the task as served after it; `before`: its status before, None: absent)."""
    return after["created_at"] if before is None else after["updated_at"]


def job_of(task: Mapping[str, Any]) -> str:
    """The job a task's runs belong to: `meta.job` when it is a non-empty string, else its id."""
    meta = task.get("meta")
    job = meta.get("job") if isinstance(meta, dict) else None
    return job if isinstance(job, str) and job else task["task_id"]


def is_child(task: Mapping[str, Any]) -> bool:
    """A child bar (`meta.parent_id`), whose runs are kept only when the operator says so."""
    meta = task.get("meta")
    return isinstance(meta, dict) and meta.get("parent_id") is not None


def run_id(task_id: str, started_at: float, ended_at: float, status: str) -> str:
    """The same id for the same run whoever records it, so a run recorded twice is kept once."""
    key = "\0".join((task_id, repr(float(started_at)), repr(float(ended_at)), status))
    return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=10).hexdigest()


def run_for(task: Mapping[str, Any], status: str, ended_at: Optional[float] = None,
            started_at: Optional[float] = None, log_tail: Sequence[str] = ()) -> Run:
    """The record of a run of `task` (as served) that ended with `status`.

    `ended_at` defaults to when the task finished (close, error) or last changed
    (abandoned), `started_at` to its `created_at`; `log_tail` is its log, oldest first.
    """
    if ended_at is None:
        ended_at = task["updated_at"] if status == ABANDONED else (
            task.get("done_at") or task["updated_at"])
    if started_at is None:
        started_at = task["created_at"]
    meta = task.get("meta")
    if isinstance(meta, dict) and contract.TOKEN_META_KEY in meta:
        meta = {k: v for k, v in meta.items() if k != contract.TOKEN_META_KEY}
    return {
        "id": run_id(task["task_id"], started_at, ended_at, status),
        "job": job_of(task),
        "task_id": task["task_id"],
        "desc": task.get("desc"),
        "unit": task.get("unit"),
        "total": task.get("total"),
        "n": task.get("n"),
        "status": status,
        "started_at": started_at,
        "ended_at": ended_at,
        "duration": max(0.0, ended_at - started_at),
        "metrics": task.get("metrics"),
        "postfix": task.get("postfix"),
        "meta": meta,
        "log": list(log_tail[-LOG_TAIL_LINES:]) if status in FAILED_STATUSES else None,
    }


class Transition(NamedTuple):
    """Runs one change ended, and when the task's current run began after it."""

    runs: List[Run]
    run_started_at: Optional[float]


def ended_runs(before: Optional[Mapping[str, Any]], after: Optional[Mapping[str, Any]],
               run_started_at: Optional[float], *, log_before: Sequence[str] = (),
               log_after: Sequence[str] = (), children: bool = False) -> Transition:
    """The runs one change of a task ended, from its served form before and after (None:
    absent), and its new `run_started_at`; child bars' runs only with `children`."""
    decided = step(before and before["status"], after and after["status"])
    runs: List[Run] = []
    if decided.ends and decided.from_before:
        assert before is not None
        if children or not is_child(before):
            runs.append(run_for(before, decided.ends, started_at=run_started_at,
                                log_tail=log_before))
    if decided.begins:
        assert after is not None
        run_started_at = run_start(before and before["status"], after)
    if decided.ends and not decided.from_before:
        assert after is not None
        if children or not is_child(after):
            runs.append(run_for(after, decided.ends, started_at=run_started_at,
                                log_tail=log_after))
    return Transition(runs, run_started_at)
