"""A task as the Redis scripts hold it: the packed record, read and made on the Python side.

A record is packed with Redis's `struct` library, which Python's `struct`
reads back: a status code, a mask of null fields, the numbers as IEEE doubles
(exact, and no formatting to pay for), then the id, desc, unit and meta
fragments, NUL-terminated (JSON fragments never hold a raw NUL). User text
(task ids, desc, unit, meta) reaches Lua as JSON fragments and is stored as
such, never decoded, so any string Python accepts round-trips exactly.
Replies and stream entries carry records back to back, removed ids joined by NUL.

A task's telemetry is kept beside its record, so that records keep the layout a
daemon of the previous release reads and writes: a telemetry record (postfix
fragment, metrics, last line's fragment, number of lines, each NUL-terminated,
empty for none; metrics as key and value fragments joined by METRIC_SEPARATOR)
and its log tail (the lines' fragments joined by NUL). A reply or stream entry
whose batch changed no telemetry carries none: the tasks keep what they had.
"""

from __future__ import annotations

import json
import math
import struct
from typing import Any, Dict, List, Mapping, Optional, Tuple

from progressistad import contract
from progressistad.core.statefile import restored_telemetry
from progressistad.core.store import RATE_STATE, EntryCache, Task

Wire = Dict[str, Any]

TEXT_FIELDS = ("desc", "unit", "meta")
FRAGMENT_FIELDS = TEXT_FIELDS + ("postfix",)
"""Event fields sent to the scripts as fragments (the postfix goes to the telemetry record)."""
TELEMETRY_FIELDS = ("postfix", "metrics", "last_log", "log_lines")
"""The texts of a telemetry record, in order."""
METRIC_SEPARATOR = "\1"
"""Between the key and value fragments of a telemetry record's metrics (no fragment holds it)."""
SERVED_NUMBERS = ("total", "n", "timestamp", "created_at", "updated_at", "done_at", "stale_at",
                  "rate", "eta")
RATE_FIELDS = ("sn", "st", "adn", "adt", "w")
"""The record's names of `store.RATE_STATE`, in its order."""
NUMBER_FIELDS = SERVED_NUMBERS + RATE_FIELDS + ("v",)
"""The record's numbers, in order: the served ones, the rate state, then the write version."""
RECORD_HEAD = ">BI"
"""Status code (1-based index in contract.STATUSES) and the null mask (bit i: number i,
bit len(NUMBER_FIELDS) + j: text j)."""
NUMBER = ">d"
SEPARATOR = "\0"
"""Ends each text of a record, and separates removed ids."""

_HEAD_SIZE = struct.calcsize(RECORD_HEAD)
_FIXED = struct.Struct(RECORD_HEAD + NUMBER[1:] * len(NUMBER_FIELDS))
"""Status code, null mask and numbers; the NUL-terminated texts follow."""
_NUMBER = struct.Struct(NUMBER)
_VERSION_OFFSET = _HEAD_SIZE + _NUMBER.size * NUMBER_FIELDS.index("v")
_TEXT_BIT = len(NUMBER_FIELDS)
_DESC_NULL, _UNIT_NULL, _META_NULL = (1 << (_TEXT_BIT + j) for j in range(len(TEXT_FIELDS)))
_SERVED_MASK = (1 << len(SERVED_NUMBERS)) - 1
_SEP = SEPARATOR.encode()
_METRIC_SEP = METRIC_SEPARATOR.encode()
NO_TELEMETRY = _SEP * len(TELEMETRY_FIELDS)
"""The telemetry record of a task without any."""


def number_at(name: str) -> int:
    """Where number `name` starts in a record, 1-based as Lua's string functions count."""
    return _HEAD_SIZE + _NUMBER.size * NUMBER_FIELDS.index(name) + 1


def fragment(value: Any) -> Optional[str]:
    """User text as the JSON fragment Lua stores verbatim (ASCII, exact), None for null."""
    if value is None:
        return None
    if isinstance(value, str) and value.isascii() and value.isprintable() \
            and '"' not in value and "\\" not in value:
        return '"' + value + '"'
    return json.dumps(value, separators=(",", ":"))


def _unfragment(raw: bytes) -> Any:
    if raw[:1] == b'"' and b"\\" not in raw:
        return raw[1:-1].decode("ascii")
    return json.loads(raw)


def event_for_lua(event: Mapping[str, Any]) -> Dict[str, Any]:
    """A validated event with its text fields as fragments, `metrics` as [key, value] fragment
    pairs (null stays null) and `log` as the lines' fragments; absent fields stay absent."""
    out = dict(event)
    out["task_id"] = fragment(event["task_id"])
    for name in FRAGMENT_FIELDS:
        if name in event:
            out[name] = fragment(event[name])
    metrics = event.get("metrics")
    if metrics is not None:
        out["metrics"] = [[fragment(key), None if value is None else repr(value)]
                          for key, value in metrics.items()]
    if "log" in event:
        out["log"] = [fragment(line) for line in event["log"]]
    return out


def metrics_text(metrics: Optional[Mapping[str, Any]]) -> Optional[str]:
    """Metrics as a telemetry record holds them, None for none."""
    if not metrics:
        return None
    return METRIC_SEPARATOR.join(fragment(key) + METRIC_SEPARATOR + repr(value)
                                 for key, value in metrics.items())


def task_telemetry(task: Task) -> Dict[str, Any]:
    """A task's telemetry as the IMPORT script takes it: fragments, metrics text, the tail."""
    tail = task.log_tail()
    return {"postfix": fragment(task.postfix), "metrics": metrics_text(task.metrics),
            "last_log": fragment(tail[-1]) if tail else None, "log_lines": len(tail),
            "tail": [fragment(line) for line in tail]}


def task_record(task: Task) -> Dict[str, Any]:
    """A task as the scripts' records hold it, texts as fragments, without a write version."""
    record: Dict[str, Any] = {"id": fragment(task.task_id), "status": task.status}
    for name in TEXT_FIELDS:
        record[name] = fragment(getattr(task, name))
    for name in SERVED_NUMBERS:
        record[name] = getattr(task, name)
    for name, slot in zip(RATE_FIELDS, RATE_STATE):
        record[name] = getattr(task, slot)
    return record


def _whole(value: float) -> Any:
    return int(value) if value.is_integer() and -2 ** 53 < value < 2 ** 53 else value


def record_to_wire(raw: bytes, telemetry: Optional[bytes] = None) -> Wire:
    """The served form of one record and its telemetry record as the scripts pack them."""
    fields = _FIXED.unpack_from(raw)
    code, mask = fields[0], fields[1]
    task_id, desc, unit, meta, _ = raw[_FIXED.size:].split(_SEP)
    postfix, metrics, last_log, log_lines = _telemetry(telemetry)
    (total, n, timestamp, created_at, updated_at, done_at, stale_at, rate,
     eta) = fields[2:2 + len(SERVED_NUMBERS)]
    if mask & _SERVED_MASK:
        (total, n, timestamp, created_at, updated_at, done_at, stale_at, rate, eta) = [
            None if mask >> i & 1 else value for i, value in
            enumerate((total, n, timestamp, created_at, updated_at, done_at, stale_at, rate, eta))]
    return {
        "task_id": _unfragment(task_id),
        "desc": None if mask & _DESC_NULL else _unfragment(desc),
        "total": None if total is None else _whole(total),
        "n": None if n is None else _whole(n),
        "unit": None if mask & _UNIT_NULL else _unfragment(unit),
        "status": contract.STATUSES[code - 1],
        "timestamp": None if timestamp is None else _whole(timestamp),
        "meta": None if mask & _META_NULL else _unfragment(meta),
        "metrics": None if metrics is None else _metrics(metrics),
        "postfix": None if postfix is None else _unfragment(postfix),
        "created_at": created_at,
        "updated_at": updated_at,
        "done_at": done_at,
        "stale_at": stale_at,
        "rate": rate,
        "eta": eta,
        "last_log": None if last_log is None else _unfragment(last_log),
        "log_lines": log_lines,
    }


def record_key(raw: bytes) -> bytes:
    """A record's id fragment: its key in the task hash and beside it."""
    return raw[_FIXED.size:raw.index(_SEP, _FIXED.size)]


def telemetry_count(raw: Optional[bytes]) -> int:
    """Lines of the log tail a telemetry record counts."""
    return _telemetry(raw)[3]


def _telemetry(raw: Optional[bytes]) -> Tuple[Optional[bytes], Optional[bytes], Optional[bytes], int]:
    """Postfix fragment, metrics text, last line's fragment (None for none) and line count."""
    if not raw or raw == NO_TELEMETRY:
        return None, None, None, 0
    postfix, metrics, last_log, lines, _ = raw.split(_SEP)
    return postfix or None, metrics or None, last_log or None, int(lines) if lines else 0


def _metrics(text: bytes) -> Dict[str, Any]:
    """Metrics from a telemetry record: its fragments make one JSON object, read in one go."""
    parts = text.split(_METRIC_SEP)
    return json.loads(b"{" + b",".join(parts[i] + b":" + parts[i + 1]
                                       for i in range(0, len(parts), 2)) + b"}")


class PackedTask(EntryCache):
    """A task as the scripts packed it, decoded to its served form on first use.

    Most tasks a daemon hears of are replaced before any dashboard or request reads them
    (broadcasts are coalesced), so decoding only then saves most of the work.
    """

    __slots__ = ("task_id", "version", "raw", "telemetry", "_wire", "_entry")

    def __init__(self, task_id: str, version: int, raw: bytes,
                 telemetry: Optional[bytes] = None) -> None:
        self.task_id = task_id
        self.version = version
        self.raw = raw
        self.telemetry = telemetry
        """The telemetry record; None when the write that made `raw` did not change it."""
        self._wire: Optional[Wire] = None
        self._entry: Optional[str] = None

    @property
    def status(self) -> str:
        return contract.STATUSES[self.raw[0] - 1]

    def to_wire(self) -> Wire:
        if self._wire is None:
            self._wire = record_to_wire(self.raw, self.telemetry)
        return self._wire

    def keep_telemetry(self, held: "PackedTask") -> None:
        """Take `held`'s telemetry when this copy's write left it as it was."""
        if self.telemetry is None:
            self.telemetry = held.telemetry

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PackedTask) and other.raw == self.raw and \
            (other.telemetry or NO_TELEMETRY) == (self.telemetry or NO_TELEMETRY)

    __hash__ = None  # type: ignore[assignment]


def decode_records(blob: bytes) -> List[PackedTask]:
    """Tasks packed back to back; only their ids and versions are read now."""
    records, pos, size = [], 0, len(blob)
    find = blob.index
    while pos < size:
        texts = pos + _FIXED.size
        id_end = find(_SEP, texts)
        end = find(_SEP, find(_SEP, find(_SEP, id_end + 1) + 1) + 1) + 1
        version = _NUMBER.unpack_from(blob, pos + _VERSION_OFFSET)[0]
        records.append(PackedTask(_unfragment(blob[texts:id_end]), int(version), blob[pos:end]))
        pos = end
    return records


def with_telemetry(tasks: List[PackedTask], blob: bytes) -> List[PackedTask]:
    """`tasks` given the telemetry records of `blob`, one per task in order (none: unchanged)."""
    if blob:
        pos, find = 0, blob.index
        for task in tasks:
            end = find(_SEP, find(_SEP, find(_SEP, find(_SEP, pos) + 1) + 1) + 1) + 1
            task.telemetry = blob[pos:end]
            pos = end
    return tasks


def decode_tail(blob: Optional[bytes]) -> List[str]:
    """The lines of a log tail as the scripts keep it, oldest first."""
    return [_unfragment(line) for line in blob.split(_SEP)] if blob else []


def decode_ids(blob: bytes) -> List[str]:
    """Removed task ids: their fragments joined by NUL."""
    return [_unfragment(item) for item in blob.split(_SEP)] if blob else []


class InvalidState(ValueError):
    """A state file entry that cannot be imported; the message names the task and field."""


def wire_to_record(wire: Mapping[str, Any], now: float) -> Dict[str, Any]:
    """A record and its telemetry from a task's served form (a state file entry, with its log
    tail), as `Task.from_wire` rebuilds it; telemetry beyond the event rules is cut."""
    task_id = wire.get("task_id")
    if not isinstance(task_id, str) or not task_id:
        raise InvalidState(f"task {task_id!r}: 'task_id' must be a non-empty string")
    status = wire.get("status", contract.START)
    if status not in contract.STATUSES:
        raise InvalidState(f"task {task_id!r}: unknown status {status!r}")
    for name in SERVED_NUMBERS:
        value = wire.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not math.isfinite(value)):
            raise InvalidState(f"task {task_id!r}: field {name!r} must be a number or null")
    # created_at and updated_at cannot be null (updated_at orders the sweep queues): a null
    # one is taken for a missing one, which a new task's value replaces.
    kept = {name: value for name, value in wire.items()
            if value is not None or name not in ("created_at", "updated_at")}
    kept.update(restored_telemetry(wire))
    task = Task.from_wire(kept, now)
    return {**task_record(task), **task_telemetry(task)}
