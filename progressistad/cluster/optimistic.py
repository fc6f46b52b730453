"""Events applied in Python against Redis under an optimistic transaction (WATCH, MULTI/EXEC).

The rules are `core.store.Task`'s own: the tasks of a batch are read under WATCH, applied
in Python, and written back in one MULTI/EXEC that Redis refuses when another client
wrote any watched key in between; the batch is then read and applied again. One
transaction per daemon is in flight at a time (concurrent ones of the same daemon would
only abort each other). Two round trips: WATCH and the reads, then MULTI ... EXEC.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from progressistad import contract
from progressistad.cluster import records, scripts
from progressistad.cluster.records import PackedTask, event_for_lua
from progressistad.core.store import (
    QUEUE_FINISHED, RATE_STATE, SWEEP_QUEUES, CapacityError, Task, sweep_queue,
)

_FIXED = struct.Struct(records.RECORD_HEAD + records.NUMBER[1:] * len(records.NUMBER_FIELDS))
_SERVED = len(records.SERVED_NUMBERS)
_TEXT_BIT = len(records.NUMBER_FIELDS)
_SEP = records.SEPARATOR.encode()
_CODES = {status: code for code, status in enumerate(contract.STATUSES, 1)}


def task_of(raw: bytes) -> Task:
    """A record as a `Task` whose texts (id included) stay JSON fragments, as they are stored."""
    fields = _FIXED.unpack_from(raw)
    mask = fields[1]
    texts = raw[_FIXED.size:].split(_SEP)
    task = Task.__new__(Task)
    task.task_id = texts[0].decode()
    for j, name in enumerate(records.TEXT_FIELDS):
        setattr(task, name, None if mask >> (_TEXT_BIT + j) & 1 else texts[1 + j].decode())
    task.status = contract.STATUSES[fields[0] - 1]
    names = records.SERVED_NUMBERS + RATE_STATE
    for i, name in enumerate(names):
        setattr(task, name, None if mask >> i & 1 else fields[2 + i])
    task._entry = None
    return task


def pack(task: Task, version: int) -> bytes:
    """The record of `task` (texts as fragments) at write `version`, as the scripts pack it."""
    mask, values = 0, []
    for i, name in enumerate(records.SERVED_NUMBERS + RATE_STATE):
        value = getattr(task, name)
        if value is None:
            mask |= 1 << i
            value = 0.0
        values.append(value)
    values.append(version)
    texts = [task.task_id.encode()]
    for j, name in enumerate(records.TEXT_FIELDS):
        value = getattr(task, name)
        if value is None:
            mask |= 1 << (_TEXT_BIT + j)
            value = ""
        texts.append(value.encode())
    return _FIXED.pack(_CODES[task.status], mask, *values) + b"".join(t + _SEP for t in texts)


class Conflict(Exception):
    """Another client wrote a watched key: read and apply again."""


class OptimisticApply:
    """`RedisTaskStore.apply` done in Python: rules from `core.store`, one transaction a batch."""

    def __init__(self, client, keys: List[str], stream_maxlen: int, owner: str) -> None:
        self.client = client
        named = dict(zip(scripts.KEY_NAMES, keys))
        self.tasks, self.finished, self.seq, self.stream = (
            named["tasks"], named["finished"], named["seq"], named["events"])
        self.queue = {queue: named[f"sweep:{queue}"] for queue in SWEEP_QUEUES}
        self.stream_maxlen = stream_maxlen
        self.owner = owner
        self.conflicts = 0
        self._lock: Optional[asyncio.Lock] = None

    async def __call__(self, events: Sequence[Mapping[str, Any]], now: float,
                       max_tasks: int) -> Tuple[List[PackedTask], List[str]]:
        if self._lock is None:
            self._lock = asyncio.Lock()
        fragments = [event_for_lua(event) for event in events]
        async with self._lock:
            while True:
                try:
                    return await self._attempt(fragments, now, max_tasks)
                except Conflict:
                    self.conflicts += 1

    async def _attempt(self, events, now, max_tasks):
        ids = list(dict.fromkeys(event["task_id"] for event in events))
        pool = self.client.connection_pool
        conn = await pool.get_connection()
        try:
            replies = await self._send(conn, [
                ("WATCH", self.tasks, self.finished, self.seq),
                ("HMGET", self.tasks, *ids), ("HLEN", self.tasks), ("GET", self.seq)])
            _, raws, count, seq = replies
            tasks: Dict[str, Task] = {}
            was_in: Dict[str, str] = {}
            for task_id, raw in zip(ids, raws):
                if raw is not None:
                    task = tasks[task_id] = task_of(raw)
                    was_in[task_id] = sweep_queue(task.status)
            victims = await self._victims(conn, ids, count + len(ids) - len(tasks) - max_tasks,
                                          max_tasks)
            last: Dict[str, int] = {}
            for position, event in enumerate(events):
                task_id = event["task_id"]
                task = tasks.get(task_id)
                if task is None:
                    task = tasks[task_id] = Task(task_id, now)
                task.apply(event, now)
                last[task_id] = position
            ids.sort(key=last.__getitem__)
            base = int(seq or 0)
            commands: List[Tuple[Any, ...]] = [("MULTI",)]
            if victims:
                commands.append(("HDEL", self.tasks, *victims))
                commands.append(("ZREM", self.finished, *victims))
                for key in self.queue.values():
                    commands.append(("ZREM", key, *victims))
            blobs, hash_args = [], []
            filed: Dict[str, List[Any]] = {queue: [] for queue in SWEEP_QUEUES}
            left: Dict[str, List[str]] = {queue: [] for queue in SWEEP_QUEUES}
            finished: List[Any] = []
            unfinished: List[str] = []
            for k, task_id in enumerate(ids, 1):
                task = tasks[task_id]
                blob = pack(task, base + k)
                blobs.append(blob)
                hash_args += (task_id, blob)
                home = sweep_queue(task.status)
                filed[home] += (repr(task.updated_at), task_id)
                if was_in.get(task_id, home) != home:
                    left[was_in[task_id]].append(task_id)
                if home == QUEUE_FINISHED:
                    finished += (base + k, task_id)
                elif was_in.get(task_id) == QUEUE_FINISHED:
                    unfinished.append(task_id)
            commands.append(("SET", self.seq, base + len(ids)))
            commands.append(("HSET", self.tasks, *hash_args))
            for queue in SWEEP_QUEUES:
                if filed[queue]:
                    commands.append(("ZADD", self.queue[queue], *filed[queue]))
                if left[queue]:
                    commands.append(("ZREM", self.queue[queue], *left[queue]))
            if finished:
                commands.append(("ZADD", self.finished, *finished))
            if unfinished:
                commands.append(("ZREM", self.finished, *unfinished))
            blob = b"".join(blobs)
            removed = records.SEPARATOR.join(victims)
            commands.append(("XADD", self.stream, "MAXLEN", "~", self.stream_maxlen, "*",
                             scripts.STREAM_ORIGIN, self.owner, scripts.STREAM_TASKS, blob,
                             scripts.STREAM_REMOVED, removed))
            commands.append(("EXEC",))
            replies = await self._send(conn, commands)
            if replies[-1] is None:
                raise Conflict()
        except BaseException:
            await conn.disconnect()
            raise
        finally:
            await pool.release(conn)
        return records.decode_records(blob), records.decode_ids(removed.encode())

    async def _victims(self, conn, ids: List[str], needed: int, max_tasks: int) -> List[str]:
        """The finished tasks to evict so that the batch fits, as `TaskStore._make_room`."""
        if needed <= 0:
            return []
        (oldest,) = await self._send(conn, [("ZRANGE", self.finished, 0, needed + len(ids) - 1)])
        batch = set(ids)
        victims = [task_id.decode() for task_id in oldest if task_id.decode() not in batch][:needed]
        if len(victims) < needed:
            await self._send(conn, [("UNWATCH",)])
            raise CapacityError(needed, max_tasks)
        return victims

    @staticmethod
    async def _send(conn, commands) -> List[Any]:
        await conn.send_packed_command(conn.pack_commands(commands))
        return [await conn.read_response() for _ in commands]
