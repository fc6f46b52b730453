"""The notification queue, delivery log and gathering lease in Redis, for daemons that share it.

Imported only with `--redis-url` (redis-py is an optional dependency). Each
queue operation is one Lua script (atomic). A daemon takes an entry under a
lease, so that one daemon sends it; an entry whose lease runs out (its daemon
died mid-attempt) is due again for any daemon. The daemon holding the gathering
lease turns task changes into messages; the others only deliver.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, List, Optional, Set

from progressistad.alerts.delivery import STOP_TIMEOUT
from progressistad.alerts.queue import LOG_LENGTH, QUEUE_CAPACITY, Entry, Record

log = logging.getLogger("progressistad.alerts")

KEYS = ("entries", "due", "order", "leases", "routes")
"""Keys of the queue under `<prefix>notify:`, in the order the scripts take them."""
SCAN = 200
"""Due entries a take looks through for one whose route is not busy here."""

_COMMON = """
local K_ENTRIES, K_DUE, K_ORDER, K_LEASES, K_ROUTES = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local function forget(id)
  redis.call("HDEL", K_ENTRIES, id)
  redis.call("HDEL", K_ROUTES, id)
  redis.call("ZREM", K_DUE, id)
  redis.call("ZREM", K_ORDER, id)
  redis.call("ZREM", K_LEASES, id)
end
local function busy_set(first)
  local busy = {}
  for i = first, #ARGV do busy[ARGV[i]] = true end
  return busy
end
"""

PUSH = _COMMON + """
-- ARGV: id, entry, not_before, queued_at, route, capacity, now
local id, now, capacity = ARGV[1], tonumber(ARGV[7]), tonumber(ARGV[6])
if redis.call("HEXISTS", K_ENTRIES, id) == 1 then return {} end
local dropped, size = {}, redis.call("HLEN", K_ENTRIES)
if size >= capacity then
  for _, old in ipairs(redis.call("ZRANGE", K_ORDER, 0, -1)) do
    if size < capacity then break end
    local lease = redis.call("ZSCORE", K_LEASES, old)
    if not lease or tonumber(lease) <= now then
      table.insert(dropped, redis.call("HGET", K_ENTRIES, old))
      forget(old)
      size = size - 1
    end
  end
end
redis.call("HSET", K_ENTRIES, id, ARGV[2])
redis.call("HSET", K_ROUTES, id, ARGV[5])
redis.call("ZADD", K_DUE, ARGV[3], id)
redis.call("ZADD", K_ORDER, ARGV[4], id)
return dropped
"""

TAKE = _COMMON + """
-- ARGV: now, lease_until, scan, busy routes...
local now = tonumber(ARGV[1])
for _, id in ipairs(redis.call("ZRANGEBYSCORE", K_LEASES, "-inf", now)) do
  redis.call("ZREM", K_LEASES, id)
  if redis.call("HEXISTS", K_ENTRIES, id) == 1 then redis.call("ZADD", K_DUE, now, id) end
end
local busy = busy_set(4)
for _, id in ipairs(redis.call("ZRANGEBYSCORE", K_DUE, "-inf", now, "LIMIT", 0, ARGV[3])) do
  local route = redis.call("HGET", K_ROUTES, id)
  if route and not busy[route] then
    redis.call("ZREM", K_DUE, id)
    redis.call("ZADD", K_LEASES, ARGV[2], id)
    return redis.call("HGET", K_ENTRIES, id)
  end
end
return false
"""

RETRY = _COMMON + """
-- ARGV: id, entry, not_before
if redis.call("HEXISTS", K_ENTRIES, ARGV[1]) == 0 then return 0 end
redis.call("HSET", K_ENTRIES, ARGV[1], ARGV[2])
redis.call("ZREM", K_LEASES, ARGV[1])
redis.call("ZADD", K_DUE, ARGV[3], ARGV[1])
return 1
"""

DONE = _COMMON + """
forget(ARGV[1])
return 1
"""

NEXT_DUE = _COMMON + """
-- ARGV: scan, busy routes...; the earliest due time of a route not busy, or of a lease's end
local busy, best = busy_set(2), nil
local listed = redis.call("ZRANGE", K_DUE, 0, tonumber(ARGV[1]) - 1, "WITHSCORES")
for i = 1, #listed, 2 do
  if not busy[redis.call("HGET", K_ROUTES, listed[i])] then best = tonumber(listed[i + 1]) break end
end
local lease = redis.call("ZRANGE", K_LEASES, 0, 0, "WITHSCORES")
if lease[2] and (best == nil or tonumber(lease[2]) < best) then best = tonumber(lease[2]) end
if best == nil then return false end
return tostring(best)
"""

GATHER = """
-- KEYS: lease; ARGV: owner, ms. Take or renew the gathering lease; 1 when this daemon holds it.
if redis.call("GET", KEYS[1]) == ARGV[1] or redis.call("SET", KEYS[1], ARGV[1], "NX") then
  redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
  return 1
end
return 0
"""

RELEASE = """
if redis.call("GET", KEYS[1]) == ARGV[1] then redis.call("DEL", KEYS[1]) end
return 1
"""


def _keys(prefix: str) -> List[str]:
    return [f"{prefix}notify:{name}" for name in KEYS]


def _dumps(entry: Entry) -> str:
    return json.dumps(entry.to_record(), separators=(",", ":"))


class RedisQueue:
    """`MessageQueue` in Redis: entries taken under a lease of `lease_seconds`."""

    def __init__(self, client: Any, prefix: str, lease_seconds: float,
                 capacity: int = QUEUE_CAPACITY) -> None:
        self._keys = _keys(prefix)
        self._lease = lease_seconds
        self.capacity = capacity
        self._push, self._take, self._retry, self._done, self._next_due = (
            client.register_script(text) for text in (PUSH, TAKE, RETRY, DONE, NEXT_DUE))
        self._client = client

    async def push(self, entry: Entry) -> List[Entry]:
        dropped = await self._push(keys=self._keys, args=[
            entry.message.id, _dumps(entry), entry.not_before, entry.queued_at,
            entry.message.route, self.capacity, entry.queued_at])
        return [Entry.from_record(json.loads(raw)) for raw in dropped]

    async def take(self, now: float, busy: Set[str]) -> Optional[Entry]:
        raw = await self._take(keys=self._keys, args=[now, now + self._lease, SCAN, *busy])
        return Entry.from_record(json.loads(raw)) if raw else None

    async def retry(self, entry: Entry) -> None:
        await self._retry(keys=self._keys, args=[entry.message.id, _dumps(entry),
                                                 entry.not_before])

    async def done(self, entry: Entry) -> None:
        await self._done(keys=self._keys, args=[entry.message.id])

    async def next_due(self, busy: Set[str]) -> Optional[float]:
        raw = await self._next_due(keys=self._keys, args=[SCAN, *busy])
        return float(raw) if raw else None

    async def pending(self) -> List[Entry]:
        raws = await self._client.hvals(self._keys[0])
        entries = [Entry.from_record(json.loads(raw)) for raw in raws]
        return sorted(entries, key=lambda entry: entry.queued_at)

    async def length(self) -> int:
        return int(await self._client.hlen(self._keys[0]))


class RedisLog:
    """`DeliveryLog` in Redis: the last `length` records, newest first, for every daemon."""

    def __init__(self, client: Any, prefix: str, length: int = LOG_LENGTH) -> None:
        self._client = client
        self._key = f"{prefix}notify:log"
        self._length = length

    async def add(self, record: Record) -> None:
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.lpush(self._key, json.dumps(record.to_dict(), separators=(",", ":")))
            pipe.ltrim(self._key, 0, self._length - 1)
            await pipe.execute()

    async def last(self) -> List[Record]:
        return [Record(**json.loads(raw)) for raw in await self._client.lrange(self._key, 0, -1)]


class GatherLease:
    """Whether this daemon gathers the group's notifications (`Alerts(gathers=lease)`)."""
    # Renewed every third of its time while started; a daemon that dies loses it when it
    # runs out, and one that stops hands it back.

    def __init__(self, client: Any, prefix: str, owner: str, seconds: float) -> None:
        self._key = f"{prefix}notify:gather-lease"
        self._owner = owner
        self._seconds = seconds
        self._gather = client.register_script(GATHER)
        self._release = client.register_script(RELEASE)
        self.held = False
        self._task: Optional["asyncio.Future[None]"] = None
        self._stopping = False

    def __call__(self) -> bool:
        return self.held

    async def renew(self) -> bool:
        """Take or renew the lease; False (and not held) when Redis cannot be reached."""
        try:
            held = bool(await self._gather(keys=[self._key],
                                           args=[self._owner, int(self._seconds * 1000)]))
        except Exception as exc:  # Redis away: stop gathering until it answers again
            if self.held:
                log.warning("notifications: cannot renew the gathering lease: %s", exc)
            held = False
        if held != self.held:
            log.info("notifications: this daemon %s the group's notifications",
                     "now gathers" if held else "no longer gathers")
        self.held = held
        return held

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while not self._stopping:
            await self.renew()
            await asyncio.sleep(self._seconds / 3)

    async def close(self) -> None:
        """Stop renewing and hand the lease back, so that another daemon gathers at once."""
        if self._task is not None:
            # Flagged as well as cancelled: redis-py 4.3 swallows a cancel that lands in a read.
            self._stopping = True
            self._task.cancel()
            await asyncio.wait([self._task], timeout=STOP_TIMEOUT)
        if self.held:
            try:
                await self._release(keys=[self._key], args=[self._owner])
            except Exception:  # the lease runs out by itself
                pass
        self.held = False
