"""History queries, shared by the backends: their validation, the paging cursor, job globs
and a job's summary, so that every backend answers the same."""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import struct
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Pattern, Sequence, Tuple

from progressistad import contract
from progressistad.core import wirejson
from progressistad.history import expectations
from progressistad.history.records import RUN_STATUSES, Run

DEFAULT_LIMIT = 100
MAX_LIMIT = contract.HISTORY_MAX_LIMIT
JOB_MAX_CHARS = 8192
"""Longest job or job pattern a query may name (a job may come from `meta.job`)."""

_RUNS_CURSOR = "r"
_JOBS_CURSOR = "j"


class QueryError(ValueError):
    """A query argument is wrong: `field` names it, the message says why (a 400)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class HistoryUnavailable(Exception):
    """The history cannot be read or changed right now (a 503); the message says why."""


Position = Tuple[float, str]
"""Where a page of runs ends: the last run's (ended_at, id)."""


@dataclass(frozen=True)
class RunQuery:
    """GET /history: runs newest first, `since <= ended_at < until`, after `position`."""

    job: Optional[str] = None
    status: Optional[str] = None
    since: Optional[float] = None
    until: Optional[float] = None
    limit: int = DEFAULT_LIMIT
    position: Optional[Position] = None


@dataclass(frozen=True)
class JobQuery:
    """GET /history/jobs: jobs by name matching `pattern` (a GLOB), after `position`."""

    pattern: Optional[str] = None
    limit: int = DEFAULT_LIMIT
    position: Optional[str] = None


def run_query(job: Optional[str] = None, status: Optional[str] = None,
              since: Optional[float] = None, until: Optional[float] = None,
              limit: Optional[int] = None, cursor: Optional[str] = None) -> RunQuery:
    """A validated RunQuery from the arguments of GET /history; raises QueryError."""
    if status is not None and status not in RUN_STATUSES:
        raise QueryError("status", f"status must be one of {', '.join(RUN_STATUSES)}")
    position = None
    if cursor is not None:
        ended_at, run_id = _decode(cursor, _RUNS_CURSOR, (float, str))
        position = (ended_at, run_id)
    return RunQuery(_job(job, "job"), status, _time(since, "since"), _time(until, "until"),
                    _limit(limit), position)


def job_query(job: Optional[str] = None, limit: Optional[int] = None,
              cursor: Optional[str] = None) -> JobQuery:
    """A validated JobQuery from the arguments of GET /history/jobs (`job`: a GLOB); raises
    QueryError."""
    pattern = _job(job, "job")
    if pattern is not None:
        glob_regex(pattern)
    position = None if cursor is None else _decode(cursor, _JOBS_CURSOR, (str,))[0]
    return JobQuery(pattern, _limit(limit), position)


def _job(value: Optional[str], name: str) -> Optional[str]:
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > JOB_MAX_CHARS:
        raise QueryError(name, f"{name} must be a text of 1 to {JOB_MAX_CHARS} characters")
    return value


def _time(value: Optional[float], name: str) -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise QueryError(name, f"{name} must be a finite number (epoch seconds)")
    return float(value)


def _limit(value: Optional[int]) -> int:
    if value is None:
        return DEFAULT_LIMIT
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LIMIT:
        raise QueryError("limit", f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return value


# ---- the cursor: an opaque token for the position a page ended at


def encode_cursor(kind: str, *values: Any) -> str:
    raw = wirejson.dumps([kind, *values]).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _decode(cursor: str, kind: str, types: Sequence[type]) -> List[Any]:
    """The values a cursor of `kind` holds; QueryError for anything this module did not make."""
    problem = QueryError("cursor", "cursor is not one this history gave out (take it from `next`)")
    if not isinstance(cursor, str) or len(cursor) > 4 * JOB_MAX_CHARS:
        raise problem
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        raise problem from None
    if not isinstance(decoded, list) or len(decoded) != 1 + len(types) or decoded[0] != kind:
        raise problem
    values = decoded[1:]
    for value, wanted in zip(values, types):
        if wanted is float and isinstance(value, int) and not isinstance(value, bool):
            continue
        if not isinstance(value, wanted) or (wanted is float and not math.isfinite(value)):
            raise problem
    return [float(v) if t is float else v for v, t in zip(values, types)]


def runs_page(runs: List[Run], limit: int) -> Dict[str, Any]:
    """`{"runs", "next"}` from up to `limit + 1` runs newest first (one more says there are more)."""
    if len(runs) <= limit:
        return {"runs": runs, "next": None}
    last = runs[limit - 1]
    return {"runs": runs[:limit], "next": encode_cursor(_RUNS_CURSOR, last["ended_at"], last["id"])}


def jobs_page(jobs: List[Tuple[str, Dict[str, Any]]], more: bool) -> Dict[str, Any]:
    """`{"jobs", "next"}` from one page of (job, summary) pairs in job order."""
    return {"jobs": dict(jobs), "next": encode_cursor(_JOBS_CURSOR, jobs[-1][0]) if more else None}


def job_summary(runs: int, ok: int, failed: int, last: Optional[Run],
                durations: Sequence[float]) -> Dict[str, Any]:
    """A job as /history/jobs shows it; `durations` are its last close runs'."""
    found = expectations.figures(durations[:expectations.WINDOW])
    return {"runs": runs, "ok": ok, "failed": failed, "last": last,
            "duration": {"median": found and found.median, "p90": found and found.p90}}


def job_figures(summaries: List[Tuple[str, Dict[str, Any]]],
                statuses: Dict[str, Dict[str, Tuple[int, Optional[float]]]],
                more: bool) -> Dict[str, Any]:
    """What /metrics shows of the first jobs: each one's summary plus, by run status, how many
    runs it has and when the last of them ended (`statuses`: job -> status -> (runs, last))."""
    jobs = {}
    for job, summary in summaries:
        held = statuses.get(job, {})
        jobs[job] = {**summary, "statuses": {
            status: {"runs": held.get(status, (0, None))[0],
                     "last_ended_at": held.get(status, (0, None))[1]}
            for status in RUN_STATUSES}}
    return {"jobs": jobs, "more": more}


# ---- job patterns: SQLite's GLOB (case-sensitive `*`, `?`, `[...]`, `[^...]`)

_GLOB_SPECIAL = "*?["


def glob_prefix(pattern: str) -> str:
    """The literal text every job the pattern matches begins with."""
    cut = min((i for i in (pattern.find(c) for c in _GLOB_SPECIAL) if i >= 0), default=len(pattern))
    return pattern[:cut]


def glob_regex(pattern: str) -> Pattern[str]:
    """A regular expression whose `fullmatch` is SQLite's `GLOB pattern`; QueryError when a
    `[` is not closed."""
    out, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        i += 1
        if char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        elif char == "[":
            klass, i = _glob_class(pattern, i)
            out.append(klass)
        else:
            out.append(re.escape(char))
    return re.compile("".join(out), re.DOTALL)


def _glob_class(pattern: str, i: int) -> Tuple[str, int]:
    """The regex of the class opened just before `i`, and where the pattern goes on."""
    negate = pattern.startswith("^", i)
    j = i + negate
    end = pattern.find("]", j + 1)  # a `]` first in the class is one of its characters
    if end < 0:
        raise QueryError("job", "job pattern has a [ without its ]")
    body = pattern[j:end]
    # A leading `]` is a character and, as in SQLite, cannot begin a range.
    ranges, k = ([re.escape("]")], 1) if body.startswith("]") else ([], 0)
    while k < len(body):
        if k + 2 < len(body) and body[k + 1] == "-":
            if body[k] <= body[k + 2]:
                ranges.append(re.escape(body[k]) + "-" + re.escape(body[k + 2]))
            k += 3
        else:
            ranges.append(re.escape(body[k]))
            k += 1
    if not ranges:
        return ("(?s:.)" if negate else "(?!)"), end + 1
    return "[" + "^" * negate + "".join(ranges) + "]", end + 1


# ---- an order-keeping text form of a time, for stores that sort by text (Redis)

_DOUBLE = struct.Struct(">d")
_BITS = struct.Struct(">Q")
_SIGN = 1 << 63
SORT_KEY_CHARS = 16


def sort_key(value: float) -> str:
    """Fixed-width hex of `value` whose byte order is the numbers' order."""
    (bits,) = _BITS.unpack(_DOUBLE.pack(value))
    bits = (bits ^ 0xFFFFFFFFFFFFFFFF) if bits & _SIGN else (bits | _SIGN)
    return format(bits, "016x")


def from_sort_key(key: str) -> float:
    bits = int(key[:SORT_KEY_CHARS], 16)
    bits = (bits & ~_SIGN) if bits & _SIGN else (bits ^ 0xFFFFFFFFFFFFFFFF)
    return _DOUBLE.unpack(_BITS.pack(bits))[0]
