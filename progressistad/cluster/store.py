"""Task state in Redis: the scripts of `cluster.scripts`, called through redis-py's asyncio client.

Imported only when `--redis-url` is set; redis-py is an optional dependency.
Every mutation is one script call (atomic), returns the served form of what it
changed, and appends the same change to the group's stream.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import redis.asyncio
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from progressistad.cluster import scripts
from progressistad.cluster.records import (
    PackedTask, Wire, decode_ids, decode_records, decode_tail, event_for_lua, fragment,
    record_key, record_to_wire, telemetry_count, wire_to_record, with_telemetry,
)
from progressistad.core.store import CapacityError, SweepPolicy, too_many_metrics

DEFAULT_PREFIX = "progressista:"
KEY_NAMES = scripts.KEY_NAMES
MAX_CONNECTIONS = 16
"""Connections one client opens at most; more concurrent calls wait for one (up to the socket
timeout, then fail as unavailable), so a burst of requests cannot take the descriptors
`daemon.descriptors.reserved` keeps for the daemon's own files."""
STREAM_MAXLEN = 10000
"""Changes kept in the stream: how far behind a daemon may fall and still catch up."""

POOL_EXHAUSTED = "No connection available."
"""redis-py's message (4.3 to 8) when a call waited its pool's whole timeout for a connection."""


class PoolBusy(redis.exceptions.ConnectionError):
    """Every connection of a client stayed busy for the whole wait: this daemon's own load, not
    a lost Redis (the call never reached it)."""


class BoundedPool(redis.asyncio.BlockingConnectionPool):
    """A blocking pool whose wait that runs out raises PoolBusy."""

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().get_connection(*args, **kwargs)
        except redis.exceptions.ConnectionError as error:
            if str(error) == POOL_EXHAUSTED:
                raise PoolBusy(f"every Redis connection of this daemon busy for "
                               f"{self.timeout:g}s") from error
            raise


UNAVAILABLE_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                      ConnectionError, TimeoutError)
"""Errors that mean "Redis cannot be reached right now", as opposed to a bug."""

Change = Tuple[List[PackedTask], List[str]]
"""Tasks upserted and task ids removed by one mutation."""
SweepStep = Tuple[List[PackedTask], List[str], bool]
"""A sweep call's change, and whether it stopped at its limit (the sweep goes on)."""

_CAPACITY, _REFUSED, _BUSY, _MORE = (scripts.REPLY[tag].encode()
                                     for tag in ("CAPACITY", "REFUSED", "BUSY", "MORE"))
_ORIGIN, _TASKS, _REMOVED, _TELEMETRY, _RESYNC = (
    scripts.STREAM[name].encode() for name in ("ORIGIN", "TASKS", "REMOVED", "TELEMETRY", "RESYNC"))


def connect(url: str, socket_timeout: float, max_connections: int = MAX_CONNECTIONS) -> "redis.asyncio.Redis":
    """A client for `url` that fails fast: no retries of its own, bounded connect and read times,
    and at most `max_connections` connections, waited for no longer than a read."""
    pool = BoundedPool.from_url(
        url,
        max_connections=max_connections,
        timeout=socket_timeout,
        decode_responses=False,
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_timeout,
        retry=Retry(NoBackoff(), 0),
    )
    client = redis.asyncio.Redis(connection_pool=pool)
    client.auto_close_connection_pool = True  # the pool is this client's alone: closed with it
    return client


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
        key = dict(zip(KEY_NAMES, self.keys))
        self.tasks_key, self.stream_key = key["tasks"], key["events"]
        self.telemetry_key, self.logs_key = key["telemetry"], key["logs"]
        self._apply = client.register_script(scripts.APPLY)
        self._remove = client.register_script(scripts.REMOVE)
        self._remove_where = client.register_script(scripts.REMOVE_WHERE)
        self._sweep = client.register_script(scripts.SWEEP)
        self._import = client.register_script(scripts.IMPORT)
        self._upgrade = client.register_script(scripts.UPGRADE)

    async def ping(self) -> None:
        await self.client.ping()

    async def server_version(self) -> Tuple[int, ...]:
        """The Redis server's version, e.g. (7, 0, 15)."""
        info = await self.client.info("server")
        raw = info.get("redis_version", b"0")
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        return tuple(int(part) for part in text.split(".") if part.isdigit())

    async def apply(self, events: Sequence[Mapping[str, Any]], now: float, max_tasks: int) -> Change:
        """Apply validated events all or none; raise EventRefused when one would leave its task
        too many metrics, CapacityError when they do not fit."""
        payload = json.dumps([event_for_lua(event) for event in events], separators=(",", ":"))
        reply = await self._apply(keys=self.keys,
                                  args=[repr(float(now)), max_tasks, self.stream_maxlen, payload,
                                        self.owner])
        if reply[0] == _REFUSED:
            raise too_many_metrics(int(reply[1]), int(reply[2]))
        if reply[0] == _CAPACITY:
            raise CapacityError(int(reply[1]), max_tasks)
        return with_telemetry(decode_records(reply[1]), reply[3]), decode_ids(reply[2])

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
            self.stream_maxlen, repr(float(now)), max(0, int(lease_seconds * 1000)),
            owner or self.owner, limit or 0, scripts.sweep_plan(policy),
        ])
        if reply[0] == _BUSY:
            return None
        return decode_records(reply[1]), decode_ids(reply[2]), reply[4] == _MORE

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
        raw, telemetry = await self._read_task(task_id, self.telemetry_key)
        return None if raw is None else record_to_wire(raw, telemetry)

    async def log_tail(self, task_id: str) -> Optional[List[str]]:
        """The lines of one task's log tail, oldest first, or None when there is no such task."""
        raw, telemetry, tail = await self._read_task(task_id, self.telemetry_key, self.logs_key)
        if raw is None:
            return None
        return decode_tail(tail) if telemetry_count(telemetry) else []

    async def _read_task(self, task_id: str, *keys: str) -> List[Any]:
        """A task's record and its entries under `keys`, read atomically (None where missing)."""
        member = fragment(task_id)
        async with self.client.pipeline(transaction=True) as pipe:
            for key in (self.tasks_key,) + keys:
                pipe.hget(key, member)
            return await pipe.execute()

    async def snapshot(self, statuses: Optional[Iterable[str]] = None) -> Dict[str, Wire]:
        wanted = None if statuses is None else frozenset(statuses)
        raws, telemetry = await self._read_all()
        tasks = (record_to_wire(raw, telemetry.get(record_key(raw))) for raw in raws)
        return {t["task_id"]: t for t in tasks if wanted is None or t["status"] in wanted}

    async def _read_all(self, *more: Any) -> List[Any]:
        """Every record, telemetry records by id fragment, then what `more` adds to the
        pipeline, read atomically."""
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hvals(self.tasks_key)
            pipe.hgetall(self.telemetry_key)
            for command in more:
                command(pipe)
            return await pipe.execute()

    async def view(self) -> Tuple[Dict[str, PackedTask], str]:
        """Every task and the id of the newest stream entry, read atomically."""
        raws, telemetry, newest = await self._read_all(
            lambda pipe: pipe.xrevrange(self.stream_key, count=1))
        tasks = {}
        for task in decode_records(b"".join(raws)):
            task.telemetry = telemetry.get(record_key(task.raw))
            tasks[task.task_id] = task
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
        await close_client(self.client)


async def close_client(client: "redis.asyncio.Redis") -> None:
    """Close a client and its pool (`aclose` from redis-py 5, `close` before)."""
    closer = getattr(client, "aclose", None) or client.close
    await closer()


def decode_entry(fields: Mapping[bytes, bytes]) -> Optional[Change]:
    """The change one stream entry carries, or None when it asks every daemon to resync."""
    if _RESYNC in fields:
        return None
    tasks = with_telemetry(decode_records(fields.get(_TASKS, b"")), fields.get(_TELEMETRY, b""))
    return tasks, decode_ids(fields.get(_REMOVED, b""))


def written_by(fields: Mapping[bytes, bytes], owner: str) -> bool:
    """Whether the daemon named `owner` wrote this stream entry (it applied the change already)."""
    return bool(owner) and fields.get(_ORIGIN) == owner.encode()
