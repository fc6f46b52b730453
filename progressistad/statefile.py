"""The JSON state file's layout: encode a snapshot, decode (and sanitize) a file. No I/O.

Layout, as the earlier build wrote it: `{"version": ..., "saved_at": ..., "tasks":
{task_id: task}}`. Its files carry a version string ("0.2.1"), free-text
statuses and extra keys (`recovered`, `recovered_at`); they load too.
"""

from __future__ import annotations

import json
import math
from typing import Any, Dict, Iterable, Iterator, List, Mapping, NamedTuple, Optional

from progressistad import contract
from progressistad.store import Task

ENCODE_CHUNK_TASKS = 500
"""Tasks per piece of the file's text handed to the writer."""

KEPT_STATUSES = frozenset((contract.CLOSE, contract.ERROR, contract.STALE))
"""Statuses a task keeps across a restart; any other becomes `recovered`."""


class StateFileError(Exception):
    """The file is not a state file (not JSON, wrong layout); the message says why."""


def encode_entry(task_id: str, wire: Mapping[str, Any]) -> str:
    """One task as it stands in the file's "tasks" object: `"id":{...}`."""
    return json.dumps(task_id) + ":" + json.dumps(wire, separators=(",", ":"))


def encode_chunks(entries: Iterable[str], saved_at: float) -> Iterator[str]:
    """The state file's text in pieces, from entries made by `encode_entry`."""
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


def encode(tasks: Mapping[str, Mapping[str, Any]], saved_at: float) -> str:
    entries = (encode_entry(task_id, wire) for task_id, wire in tasks.items())
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
    except (UnicodeDecodeError, ValueError) as exc:
        raise StateFileError(f"not valid JSON ({exc})") from None
    if not isinstance(document, dict) or not isinstance(document.get("tasks"), dict):
        raise StateFileError('not a state file: no "tasks" object at the top level')
    saved_at = _number(document.get("saved_at"))
    decoded = Decoded([], {}, [])
    for key, entry in document["tasks"].items():
        clean = restore_entry(key, entry, now, saved_at)
        if clean is None:
            decoded.skipped.append(str(key)[:80])
        else:
            decoded.tasks.append(Task.from_wire(clean, now))
            decoded.wire[clean["task_id"]] = clean
    return decoded


def restore_entry(key: str, entry: Any, now: float,
                  saved_at: Optional[float]) -> Optional[Dict[str, Any]]:
    """One entry in served form with sane field types and its restored status, or None."""
    if not isinstance(entry, dict):
        return None
    task_id = entry.get("task_id", key)
    if not isinstance(task_id, str) or not task_id or len(task_id) > contract.TASK_ID_MAX_CHARS:
        return None
    updated_at = _number(entry.get("updated_at"))
    if updated_at is None:
        updated_at = saved_at if saved_at is not None else now
    created_at = _number(entry.get("created_at"))
    clean: Dict[str, Any] = {
        "task_id": task_id,
        "desc": _text(entry.get("desc"), contract.DESC_MAX_CHARS),
        "total": _non_negative(entry.get("total")),
        "n": _non_negative(entry.get("n")) or 0,
        "unit": _text(entry.get("unit"), contract.UNIT_MAX_CHARS),
        "status": _restored_status(entry.get("status")),
        "timestamp": _number(entry.get("timestamp")),
        "meta": entry.get("meta") if isinstance(entry.get("meta"), dict) else None,
        "created_at": created_at if created_at is not None else updated_at,
        "updated_at": updated_at,
        "done_at": _number(entry.get("done_at")),
        "stale_at": _number(entry.get("stale_at")),
        "rate": None,
        "eta": None,
    }
    if clean["status"] in contract.FINISHED_STATUSES:
        clean["rate"] = _number(entry.get("rate"))
    return clean


def _restored_status(status: Any) -> str:
    return status if status in KEPT_STATUSES else contract.RECOVERED


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value if math.isfinite(value) else None


def _non_negative(value: Any) -> Optional[float]:
    number = _number(value)
    return number if number is not None and number >= 0 else None


def _text(value: Any, limit: int) -> Optional[str]:
    return value[:limit] if isinstance(value, str) else None
