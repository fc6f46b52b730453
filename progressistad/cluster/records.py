"""A task as the Redis scripts hold it: the packed record, read and made on the Python side.

A record is packed with Redis's `struct` library, which Python's `struct`
reads back: a status code, a mask of null fields, the numbers as IEEE doubles
(exact, and no formatting to pay for), then the id, desc, unit and meta
fragments, NUL-terminated (JSON fragments never hold a raw NUL). User text
(task ids, desc, unit, meta) reaches Lua as JSON fragments and is stored as
such, never decoded, so any string Python accepts round-trips exactly.
Replies and stream entries carry records back to back, removed ids joined by NUL.
"""

from __future__ import annotations

import json
import math
import struct
from typing import Any, Dict, List, Mapping, Optional

from progressistad import contract
from progressistad.core.store import RATE_STATE, EntryCache, Task

Wire = Dict[str, Any]

TEXT_FIELDS = ("desc", "unit", "meta")
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
    """A validated event with its text fields as fragments; absent fields stay absent."""
    out = dict(event)
    out["task_id"] = fragment(event["task_id"])
    for name in TEXT_FIELDS:
        if name in event:
            out[name] = fragment(event[name])
    return out


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


def record_to_wire(raw: bytes) -> Wire:
    """The served form of one record as the scripts pack it."""
    fields = _FIXED.unpack_from(raw)
    code, mask = fields[0], fields[1]
    task_id, desc, unit, meta, _ = raw[_FIXED.size:].split(_SEP)
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
        "created_at": created_at,
        "updated_at": updated_at,
        "done_at": done_at,
        "stale_at": stale_at,
        "rate": rate,
        "eta": eta,
    }


class PackedTask(EntryCache):
    """A task as the scripts packed it, decoded to its served form on first use.

    Most tasks a daemon hears of are replaced before any dashboard or request reads them
    (broadcasts are coalesced), so decoding only then saves most of the work.
    """

    __slots__ = ("task_id", "version", "raw", "_wire", "_entry")

    def __init__(self, task_id: str, version: int, raw: bytes) -> None:
        self.task_id = task_id
        self.version = version
        self.raw = raw
        self._wire: Optional[Wire] = None
        self._entry: Optional[str] = None

    @property
    def status(self) -> str:
        return contract.STATUSES[self.raw[0] - 1]

    def to_wire(self) -> Wire:
        if self._wire is None:
            self._wire = record_to_wire(self.raw)
        return self._wire

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PackedTask) and other.raw == self.raw

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


def decode_ids(blob: bytes) -> List[str]:
    """Removed task ids: their fragments joined by NUL."""
    return [_unfragment(item) for item in blob.split(_SEP)] if blob else []


class InvalidState(ValueError):
    """A state file entry that cannot be imported; the message names the task and field."""


def wire_to_record(wire: Mapping[str, Any], now: float) -> Dict[str, Any]:
    """A record from a task's served form (a state file entry), as `Task.from_wire` rebuilds it."""
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
    return task_record(Task.from_wire(kept, now))
