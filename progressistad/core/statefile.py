"""The JSON state file's layout: encode a snapshot, decode (and sanitize) a file. No I/O.

Layout, as the earlier build wrote it: `{"version": ..., "saved_at": ..., "tasks":
{task_id: task}}`. Its files carry a version string ("0.2.1"), free-text
statuses and extra keys (`recovered`, `recovered_at`); they load too. A task is
its served form plus, when it has a log tail, `log_tail` (the lines, oldest
first); series are not kept. Files without the telemetry fields load as tasks
without telemetry.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Iterable, Iterator, List, Mapping, NamedTuple, Optional, Union

from progressistad import contract
from progressistad.core import wirejson
from progressistad.core.store import Task

ENCODE_CHUNK_TASKS = 500
"""Tasks per piece of the file's text handed to the writer."""

KEPT_STATUSES = frozenset((contract.CLOSE, contract.ERROR, contract.STALE))
"""Statuses a task keeps across a restart; any other becomes `recovered`."""

_INT_OVERFLOW = 2 ** 1024 - 2 ** 970
"""The smallest integer too large for a float (it rounds up to 2 ** 1024)."""


class StateFileError(Exception):
    """The file is not a state file (not JSON, wrong layout); the message says why."""


def encode_chunks(entries: Iterable[str], saved_at: float) -> Iterator[str]:
    """The state file's text in pieces, from task entries (`wirejson.entry`)."""
    yield '{"version":%d,"saved_at":%s,"tasks":{' % (contract.STATE_FILE_VERSION, json.dumps(saved_at))
    pending: List[str] = []
    separator = ""
    for entry in entries:
        pending.append(entry)
        if len(pending) == ENCODE_CHUNK_TASKS:
            yield separator + ",".join(pending)
            pending, separator = [], ","
    if pending:
        yield separator + ",".join(pending)
    yield "}}\n"


TAIL_KEY = "log_tail"
"""Key of a task's log tail in the file (not a served field: GET /tasks/{id}/log serves it)."""


def state_form(task: Task) -> Dict[str, Any]:
    """What the file keeps of a task: its served form, and its log tail when it has one."""
    wire = task.to_wire()
    if task.log_lines:
        wire[TAIL_KEY] = task.log_tail()
    return wire


def pending_entry(task: Task) -> Union[str, Dict[str, Any]]:
    """The task for the writer: its entry when one is made and the file needs no more than
    the served form, else its state form for the writer to encode."""
    if task.log_lines:
        return state_form(task)
    return task.cached_entry() or task.to_wire()


def encode(tasks: Mapping[str, Mapping[str, Any]], saved_at: float) -> str:
    entries = (wirejson.entry(task_id, wire) for task_id, wire in tasks.items())
    return "".join(encode_chunks(entries, saved_at))


class Decoded(NamedTuple):
    """What a state file held: tasks, their served form, and the keys of skipped entries."""

    tasks: List[Task]
    wire: Dict[str, Dict[str, Any]]
    skipped: List[str]


def decode(raw: bytes, now: float) -> Decoded:
    """Tasks of a state file, restored as SPEC section 7 says, and the entries skipped.

    Raises StateFileError when the file as a whole cannot be a state file.
    """
    try:
        document = json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise StateFileError("not a state file: nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise StateFileError(f"not valid JSON ({exc})") from None
    if not isinstance(document, dict) or not isinstance(document.get("tasks"), dict):
        raise StateFileError('not a state file: no "tasks" object at the top level')
    saved_at = _number(document.get("saved_at"))
    decoded = Decoded([], {}, [])
    tasks, wire, skipped = decoded
    for key, entry in document["tasks"].items():
        clean = restore_entry(key, entry, now, saved_at)
        if clean is None:
            skipped.append(str(key)[:80])
        else:
            tasks.append(Task.from_wire(clean, now))
            wire[clean["task_id"]] = clean
    if len(wire) < len(tasks):
        _serve_latest_of_duplicates(decoded)
    return decoded


def _serve_latest_of_duplicates(decoded: Decoded) -> None:
    """Keep in `wire` the entry of a repeated task id that TaskStore.load keeps (the latest
    update, the later entry on a tie), not simply the last in the file."""
    for task in sorted(decoded.tasks, key=lambda task: task.updated_at):
        decoded.wire[task.task_id] = state_form(task)


def restore_entry(key: str, entry: Any, now: float,
                  saved_at: Optional[float]) -> Optional[Dict[str, Any]]:
    """One entry (as json.loads made it) in served form with sane field types and its
    restored status, or None when it cannot be a task."""
    if type(entry) is not dict:
        return None
    get = entry.get
    task_id = get("task_id", key)
    if type(task_id) is not str or not 0 < len(task_id) <= contract.TASK_ID_MAX_CHARS:
        return None
    updated_at = _number(get("updated_at"))
    if updated_at is None:
        updated_at = saved_at if saved_at is not None else now
    created_at = _number(get("created_at"))
    status = restored_status(get("status"))
    meta = get("meta")
    telemetry = restored_telemetry(entry)
    clean = {
        "task_id": task_id,
        "desc": _text(get("desc"), contract.DESC_MAX_CHARS),
        "total": _non_negative(get("total")),
        "n": _non_negative(get("n")) or 0,
        "unit": _text(get("unit"), contract.UNIT_MAX_CHARS),
        "status": status,
        "timestamp": _number(get("timestamp")),
        "meta": meta if type(meta) is dict else None,
        "created_at": created_at if created_at is not None else updated_at,
        "updated_at": updated_at,
        "done_at": _number(get("done_at")),
        "stale_at": _number(get("stale_at")),
        "rate": _number(get("rate")) if status in contract.FINISHED_STATUSES else None,
        "eta": None,
        **telemetry,
    }
    return clean


def restored_telemetry(entry: Mapping[str, Any]) -> Dict[str, Any]:
    """The telemetry of a stored entry that keeps to the event rules: `metrics`, `postfix`,
    `last_log`, `log_lines` and, when there are lines, the tail (TAIL_KEY)."""
    tail = _log_tail(entry.get(TAIL_KEY))
    telemetry = {
        "metrics": _metrics(entry.get("metrics")),
        "postfix": _text(entry.get("postfix"), contract.POSTFIX_MAX_CHARS),
        "last_log": tail[-1] if tail else None,
        "log_lines": len(tail),
    }
    if tail:
        telemetry[TAIL_KEY] = tail
    return telemetry


# The checks below run several times per entry of a start's state file, so they test
# the exact types json.loads makes (so a bool is no number) rather than isinstance;
# bench/startup.py measures a start with a large state file.

def restored_status(status: Any) -> str:
    """The status a task takes across a restart (and a state file's import into Redis)."""
    return status if type(status) is str and status in KEPT_STATUSES else contract.RECOVERED


def _number(value: Any) -> Optional[float]:
    """A finite JSON number, else None; an integer too large for a float is not finite."""
    kind = type(value)
    if kind is float:
        return value if value - value == 0.0 else None
    if kind is int:
        return value if -_INT_OVERFLOW < value < _INT_OVERFLOW else None
    return None


def _non_negative(value: Any) -> Optional[float]:
    number = _number(value)
    return number if number is not None and number >= 0 else None


def _text(value: Any, limit: int) -> Optional[str]:
    return value[:limit] if type(value) is str else None


def _metrics(value: Any) -> Optional[Dict[str, Any]]:
    """The metrics that keep to the event rules (the first METRICS_MAX_KEYS of them), or None."""
    if type(value) is not dict:
        return None
    kept = {}
    for key, number in value.items():
        if 0 < len(key) <= contract.METRIC_KEY_MAX_CHARS and _number(number) is not None:
            kept[key] = number
            if len(kept) == contract.METRICS_MAX_KEYS:
                break
    return kept or None


def _log_tail(value: Any) -> List[str]:
    """The last LOG_TAIL_LINES strings of a stored tail, each cut to LOG_LINE_MAX_BYTES."""
    if type(value) is not list:
        return []
    lines = [line for line in value if type(line) is str][-contract.LOG_TAIL_LINES:]
    return [contract.cut_log_line(line) for line in lines]
