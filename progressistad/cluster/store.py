"""Task state in Redis: the Lua scripts of `redis_scripts`, called through redis-py's asyncio client.

Imported only when `--redis-url` is set; redis-py is an optional dependency.
Every mutation is one script call (atomic), returns the served form of what it
changed, and appends the same change to the group's stream.
"""

from __future__ import annotations

import json
import math
import struct
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import redis.asyncio
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from progressistad import contract
from progressistad.cluster import scripts as redis_scripts
from progressistad.core import wirejson
from progressistad.core.store import CapacityError, SweepPolicy

DEFAULT_PREFIX = "progressista:"
KEY_NAMES = ("tasks", "updated", "finished", "seq", "events", "cleanup-lease", "layout",
             "sweep:active", "sweep:stale", "sweep:finished")
"""The keys under the prefix, in the order the scripts take them (see `redis_scripts`)."""
STREAM_MAXLEN = 10000
"""Changes kept in the stream: how far behind a daemon may fall and still catch up."""

UNAVAILABLE_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                      ConnectionError, TimeoutError)
"""Errors that mean "Redis cannot be reached right now", as opposed to a bug."""

Wire = Dict[str, Any]
Change = Tuple[List["PackedTask"], List[str]]
"""Tasks upserted and task ids removed by one mutation."""
SweepStep = Tuple[List["PackedTask"], List[str], bool]
"""A sweep call's change, and whether it stopped at its limit (the sweep goes on)."""

SERVED_NUMBERS = ("total", "n", "timestamp", "created_at", "updated_at", "done_at", "stale_at",
                  "rate", "eta")
TEXT_FIELDS = redis_scripts.TEXT_FIELDS
_FIXED = struct.Struct(redis_scripts.RECORD_HEAD + "%dd" % len(redis_scripts.NUMBER_FIELDS))
"""Status code, null mask and numbers; the NUL-terminated texts follow."""
_VERSION_AT = struct.Struct(">d")
_VERSION_OFFSET = _FIXED.size - 8 * (len(redis_scripts.NUMBER_FIELDS)
                                     - redis_scripts.NUMBER_FIELDS.index("v"))
_TEXT_BIT = len(redis_scripts.NUMBER_FIELDS)
_DESC_NULL, _UNIT_NULL, _META_NULL = (1 << (_TEXT_BIT + j) for j in range(3))
_SERVED_MASK = (1 << len(SERVED_NUMBERS)) - 1


def connect(url: str, socket_timeout: float) -> "redis.asyncio.Redis":
    """A client for `url` that fails fast: no retries of its own, bounded connect and read times."""
    return redis.asyncio.Redis.from_url(
        url,
        decode_responses=False,
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_timeout,
        retry=Retry(NoBackoff(), 0),
    )


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


def _whole(value: float) -> Any:
    return int(value) if value.is_integer() and -2 ** 53 < value < 2 ** 53 else value


def _read_record(raw: bytes) -> Wire:
    """The served form of one record as the scripts pack it (see `redis_scripts`)."""
    fields = _FIXED.unpack_from(raw)
    code, mask = fields[0], fields[1]
    task_id, desc, unit, meta, _ = raw[_FIXED.size:].split(b"\0")
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


class PackedTask:
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
            self._wire = _read_record(self.raw)
        return self._wire

    def entry(self) -> str:
        """The served form as a JSON "tasks" entry (`wirejson.entry`), made once."""
        if self._entry is None:
            self._entry = wirejson.entry(self.task_id, self.to_wire())
        return self._entry

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PackedTask) and other.raw == self.raw

    __hash__ = None  # type: ignore[assignment]


def decode_records(blob: bytes) -> List[PackedTask]:
    """Tasks packed back to back; only their ids and versions are read now."""
    records, pos, size = [], 0, len(blob)
    find = blob.index
    while pos < size:
        texts = pos + _FIXED.size
        id_end = find(b"\0", texts)
        end = find(b"\0", find(b"\0", find(b"\0", id_end + 1) + 1) + 1) + 1
        version = _VERSION_AT.unpack_from(blob, pos + _VERSION_OFFSET)[0]
        records.append(PackedTask(_unfragment(blob[texts:id_end]), int(version), blob[pos:end]))
        pos = end
    return records


def record_to_wire(raw: bytes) -> Wire:
    return _read_record(raw)


def decode_ids(blob: bytes) -> List[str]:
    """Removed task ids: their fragments joined by NUL."""
    return [_unfragment(item) for item in blob.split(b"\0")] if blob else []


class InvalidState(ValueError):
    """A state file entry that cannot be imported; the message names the task and field."""


def wire_to_record(wire: Mapping[str, Any], now: float) -> Dict[str, Any]:
    """A record from a task's served form (a state file entry), as `Task.from_wire` rebuilds it."""
    task_id = wire.get("task_id")
    if not isinstance(task_id, str) or not task_id:
        raise InvalidState(f"task {task_id!r}: 'task_id' must be a non-empty string")
    record: Dict[str, Any] = {"id": fragment(task_id), "status": wire.get("status", contract.START)}
    if record["status"] not in contract.STATUSES:
        raise InvalidState(f"task {task_id!r}: unknown status {record['status']!r}")
    for name in TEXT_FIELDS:
        record[name] = fragment(wire.get(name))
    for name in SERVED_NUMBERS:
        value = wire.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not math.isfinite(value)):
            raise InvalidState(f"task {task_id!r}: field {name!r} must be a number or null")
        record[name] = value
    record["n"] = record["n"] if record["n"] is not None else 0
    for name in ("created_at", "updated_at"):
        if record[name] is None:
            record[name] = now
    record.update(sn=record["n"], st=record["updated_at"], adn=None, adt=None, w=1.0)
    return record


class RedisTaskStore:
    """The group's tasks in Redis under one key prefix; every method is one round trip."""

    def __init__(self, client: "redis.asyncio.Redis", prefix: str = DEFAULT_PREFIX,
                 stream_maxlen: int = STREAM_MAXLEN, owner: str = "") -> None:
        self.client = client
        self.prefix = prefix
        self.owner = owner
        """Names this daemon in the stream entries it writes, so that it can skip them."""
        self.stream_maxlen = stream_maxlen
        self.keys = [prefix + name for name in KEY_NAMES]
        self.tasks_key, self.stream_key = self.keys[0], self.keys[4]
        self._apply = client.register_script(redis_scripts.APPLY)
        self._remove = client.register_script(redis_scripts.REMOVE)
        self._remove_where = client.register_script(redis_scripts.REMOVE_WHERE)
        self._sweep = client.register_script(redis_scripts.SWEEP)
        self._import = client.register_script(redis_scripts.IMPORT)
        self._upgrade = client.register_script(redis_scripts.UPGRADE)

    async def ping(self) -> None:
        await self.client.ping()

    async def server_version(self) -> Tuple[int, ...]:
        """The Redis server's version, e.g. (7, 0, 15)."""
        info = await self.client.info("server")
        raw = info.get("redis_version", b"0")
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        return tuple(int(part) for part in text.split(".") if part.isdigit())

    async def apply(self, events: Sequence[Mapping[str, Any]], now: float, max_tasks: int) -> Change:
        """Apply validated events all or none; raise CapacityError when they do not fit."""
        payload = json.dumps([event_for_lua(event) for event in events], separators=(",", ":"))
        reply = await self._apply(keys=self.keys,
                                  args=[repr(float(now)), max_tasks, self.stream_maxlen, payload,
                                        self.owner])
        if reply[0] == b"capacity":
            raise CapacityError(int(reply[1]), max_tasks)
        return decode_records(reply[1]), decode_ids(reply[2])

    async def remove(self, task_id: str) -> List[str]:
        reply = await self._remove(keys=self.keys, args=[self.stream_maxlen, fragment(task_id),
                                                           self.owner])
        return decode_ids(reply[2])

    async def remove_where(self, now: float, statuses: Optional[Iterable[str]],
                           older_than: Optional[float]) -> List[str]:
        wanted = "" if statuses is None else json.dumps(sorted(statuses))
        older = "" if older_than is None else repr(float(older_than))
        reply = await self._remove_where(
            keys=self.keys, args=[self.stream_maxlen, repr(float(now)), wanted, older, self.owner])
        return decode_ids(reply[2])

    async def sweep(self, now: float, policy: SweepPolicy, lease_seconds: float = 0.0,
                    owner: str = "", limit: Optional[int] = None) -> Optional[SweepStep]:
        """One cleanup sweep, or None when another daemon holds the cleanup lease.

        With `limit`, one step of it that acts on (or files, see `upgrade_layout`) at most
        that many tasks, the idlest first; its `more` says whether to call again.
        """
        reply = await self._sweep(keys=self.keys, args=[
            self.stream_maxlen, repr(float(now)), repr(float(policy.retention_seconds)),
            repr(float(policy.stale_seconds)), repr(float(policy.max_task_age)),
            max(0, int(lease_seconds * 1000)), owner or self.owner, limit or 0,
        ])
        if reply[0] == b"busy":
            return None
        return decode_records(reply[1]), decode_ids(reply[2]), reply[3] == b"more"

    async def upgrade_layout(self, limit: Optional[int] = None) -> Tuple[int, bool]:
        """File at most `limit` tasks the previous key layout wrote in the sweep queues: how
        many, and whether that was the last of them."""
        filed, settled = await self._upgrade(keys=self.keys, args=[limit or 0])
        return int(filed), bool(settled)

    async def import_tasks(self, wires: Iterable[Mapping[str, Any]], now: float) -> int:
        """Write tasks from a state file (replacing those with the same ids); all daemons resync."""
        records = sorted((wire_to_record(wire, now) for wire in wires), key=lambda r: r["updated_at"])
        await self._import(keys=self.keys, args=[self.stream_maxlen, json.dumps(records)])
        return len(records)

    async def get(self, task_id: str) -> Optional[Wire]:
        raw = await self.client.hget(self.tasks_key, fragment(task_id))
        return None if raw is None else record_to_wire(raw)

    async def snapshot(self, statuses: Optional[Iterable[str]] = None) -> Dict[str, Wire]:
        wanted = None if statuses is None else frozenset(statuses)
        tasks = (record_to_wire(raw) for raw in await self.client.hvals(self.tasks_key))
        return {t["task_id"]: t for t in tasks if wanted is None or t["status"] in wanted}

    async def view(self) -> Tuple[Dict[str, PackedTask], str]:
        """Every task and the id of the newest stream entry, read atomically."""
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hvals(self.tasks_key)
            pipe.xrevrange(self.stream_key, count=1)
            raws, newest = await pipe.execute()
        tasks = {task.task_id: task for task in decode_records(b"".join(raws))}
        return tasks, (newest[0][0].decode() if newest else "0-0")

    async def read_changes(self, after: str, block_seconds: float,
                           count: int) -> List[Tuple[str, Dict[bytes, bytes]]]:
        """Stream entries after `after`, waiting up to `block_seconds` for the first one."""
        reply = await self.client.xread({self.stream_key: after}, count=count,
                                        block=max(1, int(block_seconds * 1000)))
        return [(entry_id.decode(), fields) for entry_id, fields in reply[0][1]] if reply else []

    async def has_entry(self, entry_id: str) -> bool:
        """Whether the stream still holds `entry_id`, so reading after it misses nothing."""
        return bool(await self.client.xrange(self.stream_key, entry_id, entry_id, count=1))

    async def close(self) -> None:
        closer = getattr(self.client, "aclose", None) or self.client.close
        await closer()


def decode_entry(fields: Mapping[bytes, bytes]) -> Optional[Change]:
    """The change one stream entry carries, or None when it asks every daemon to resync."""
    if b"resync" in fields:
        return None
    return decode_records(fields.get(b"t", b"")), decode_ids(fields.get(b"r", b""))
