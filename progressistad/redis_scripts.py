"""The Lua scripts that apply task changes inside Redis, atomically, as `store.py` does in memory.

Each script is one transaction: it reads and writes the task hash and its two
indexes, then appends what changed to the group's stream, so every daemon sees
changes in the order they were made. User text (task ids, desc, unit, meta)
reaches Lua as JSON fragments and is stored as such, never decoded, so any
string Python accepts round-trips exactly.

A record is packed with Redis's `struct` library, which Python's `struct`
reads back: a status code, a mask of null fields, the numbers as IEEE doubles
(exact, and no formatting to pay for), then the id, desc, unit and meta
fragments, NUL-terminated (JSON fragments never hold a raw NUL).
Replies and stream entries carry records back to back, removed ids joined by NUL.

KEYS, in every script: tasks (hash: id fragment -> record), updated (zset:
updated_at), finished (zset: write version of finished tasks, the eviction
order), seq (the write version counter), stream, lease.
"""

from __future__ import annotations

from progressistad import contract
from progressistad.store import RATE_SMOOTHING

TEXT_FIELDS = ("desc", "unit", "meta")
NUMBER_FIELDS = ("total", "n", "timestamp", "created_at", "updated_at", "done_at", "stale_at",
                 "rate", "eta", "sn", "st", "adn", "adt", "w", "v")
"""The record's numbers, in order: the served ones, then the rate state and the version."""
RECORD_HEAD = ">BI"
"""Status code (1-based index in contract.STATUSES) and the null mask (bit i: number i,
bit 15 + j: text j)."""


def _lua_list(names) -> str:
    return "{" + ", ".join(f'"{name}"' for name in names) + "}"


def _lua_set(names) -> str:
    return "{" + ", ".join(f'["{name}"] = true' for name in sorted(names)) + "}"


PRELUDE = """
local NULL = cjson.null
local SMOOTHING = %(smoothing)r
local FINISHED = %(finished)s
local ACTIVE = %(active)s
local TEXT_FIELDS = %(text_fields)s
local NUMBER_FIELDS = %(number_fields)s
local STATUS_NAMES = %(status_names)s
local STATUS_CODES = {}
for code, name in ipairs(STATUS_NAMES) do STATUS_CODES[name] = code end
local RECORD = "%(record_head)s" .. string.rep("d", #NUMBER_FIELDS) .. "ssss"
local TEXT_BIT = #NUMBER_FIELDS
local K_TASKS, K_UPDATED, K_FINISHED, K_SEQ, K_STREAM, K_LEASE =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]

local function is_null(x) return x == nil or x == NULL end
-- Scores as strings with 17 digits: Redis would format a Lua number with only 14.
local function num(x) return string.format("%%.17g", x) end

local function encode(t)
  local mask, values = 0, {RECORD, STATUS_CODES[t.status], 0}
  for i, name in ipairs(NUMBER_FIELDS) do
    if is_null(t[name]) then
      mask = mask + 2 ^ (i - 1)
      values[#values + 1] = 0
    else
      values[#values + 1] = t[name]
    end
  end
  values[#values + 1] = t.id
  for j, name in ipairs(TEXT_FIELDS) do
    if is_null(t[name]) then
      mask = mask + 2 ^ (TEXT_BIT + j - 1)
      values[#values + 1] = ""
    else
      values[#values + 1] = t[name]
    end
  end
  values[3] = mask
  return struct.pack(unpack(values))
end

local function decode(raw)
  local fields = {struct.unpack(RECORD, raw)}
  local mask = fields[2]
  local texts = 2 + #NUMBER_FIELDS
  local t = {status = STATUS_NAMES[fields[1]], id = fields[texts + 1]}
  for i, name in ipairs(NUMBER_FIELDS) do
    if bit.band(mask, 2 ^ (i - 1)) ~= 0 then t[name] = NULL else t[name] = fields[2 + i] end
  end
  for j, name in ipairs(TEXT_FIELDS) do
    if bit.band(mask, 2 ^ (TEXT_BIT + j - 1)) ~= 0 then t[name] = NULL else t[name] = fields[texts + 1 + j] end
  end
  return t
end

local function load(id)
  local raw = redis.call("HGET", K_TASKS, id)
  if not raw then return nil end
  return decode(raw)
end

local function stamp(t)
  -- A group-wide version on every write: mirrors keep the newest, and finished tasks are
  -- evicted in the order of their last write, as TaskStore's insertion order does.
  t.v = redis.call("INCR", K_SEQ)
  return encode(t)
end

local function save(t)
  local encoded = stamp(t)
  redis.call("HSET", K_TASKS, t.id, encoded)
  redis.call("ZADD", K_UPDATED, num(t.updated_at), t.id)
  if FINISHED[t.status] then
    redis.call("ZADD", K_FINISHED, t.v, t.id)
  else
    redis.call("ZREM", K_FINISHED, t.id)
  end
  return encoded
end

local function remove(id)
  local gone = redis.call("HDEL", K_TASKS, id)
  redis.call("ZREM", K_UPDATED, id)
  redis.call("ZREM", K_FINISHED, id)
  return gone == 1
end

local function publish(maxlen, records, removed, origin, resync)
  -- origin: the daemon that made the change (it has applied it already and skips it).
  if #records == 0 and #removed == 0 and not resync then return end
  local args = {"XADD", K_STREAM, "MAXLEN", "~", maxlen, "*", "o", origin or "",
                "t", table.concat(records), "r", table.concat(removed, "\\0")}
  if resync then args[#args + 1] = "resync"; args[#args + 1] = "1" end
  redis.call(unpack(args))
end

local function result(records, removed)
  return {"ok", table.concat(records), table.concat(removed, "\\0")}
end
""" % {
    "smoothing": RATE_SMOOTHING,
    "text_fields": _lua_list(TEXT_FIELDS),
    "number_fields": _lua_list(NUMBER_FIELDS),
    "status_names": _lua_list(contract.STATUSES),
    "record_head": RECORD_HEAD,
    "finished": _lua_set(contract.FINISHED_STATUSES),
    "active": _lua_set(contract.ACTIVE_STATUSES),
}

APPLY = PRELUDE + """
-- ARGV: now, max_tasks, maxlen, events (JSON array; text fields as JSON fragments), origin
local now, max_tasks, maxlen = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local events = cjson.decode(ARGV[4])

local function new_task(id)
  return {id = id, status = "start", desc = NULL, unit = NULL, meta = NULL, total = NULL, n = 0,
          timestamp = NULL, created_at = now, updated_at = now, done_at = NULL, stale_at = NULL,
          rate = NULL, eta = NULL, sn = 0, st = now, adn = NULL, adt = NULL, w = 1.0}
end

local function reset_rate(t)
  t.sn, t.st, t.adn, t.adt, t.rate = t.n, now, NULL, NULL, NULL
end

local function estimate_eta(t)
  if not ACTIVE[t.status] or is_null(t.total) then return NULL end
  local remaining = t.total - t.n
  if remaining <= 0 then return 0.0 end
  if is_null(t.rate) or t.rate <= 0 then return NULL end
  return remaining / t.rate
end

local function update_rate(t)
  -- Same-instant events (one batch) fold into the current sample, as Task._update_rate does.
  if t.n < t.sn then reset_rate(t) end
  local dn, dt = t.n - t.sn, now - t.st
  if dt > 0 then
    if is_null(t.adn) then t.w = 1.0 else t.w = SMOOTHING end
    t.adn = t.w * dn + (1 - t.w) * (is_null(t.adn) and 0.0 or t.adn)
    t.adt = t.w * dt + (1 - t.w) * (is_null(t.adt) and 0.0 or t.adt)
  elseif not is_null(t.adn) and dn ~= 0 then
    t.adn = t.adn + t.w * dn
  else
    t.eta = estimate_eta(t)
    return
  end
  t.rate = t.adn / t.adt
  t.sn, t.st = t.n, now
  t.eta = estimate_eta(t)
end

local function apply(t, ev)
  local status = ev.status
  if is_null(status) then status = "update" end
  local was_finished = FINISHED[t.status]
  if status == "start" and was_finished then
    t.created_at = now
    reset_rate(t)
  end
  for _, name in ipairs({"desc", "total", "unit", "timestamp", "meta"}) do
    if ev[name] ~= nil then t[name] = ev[name] end
  end
  if ev.n ~= nil then t.n = ev.n end
  t.status, t.updated_at, t.stale_at = status, now, NULL
  if not FINISHED[status] then t.done_at = NULL elseif not was_finished then t.done_at = now end
  update_rate(t)
end

-- Load every task of the batch at once, then make room, all or none, as TaskStore._make_room.
local ids, in_batch = {}, {}
for _, ev in ipairs(events) do
  if not in_batch[ev.task_id] then
    in_batch[ev.task_id] = true
    ids[#ids + 1] = ev.task_id
  end
end
local tasks, was_finished, new_count = {}, {}, 0
for i, raw in ipairs(redis.call("HMGET", K_TASKS, unpack(ids))) do
  if raw then
    local t = decode(raw)
    tasks[ids[i]] = t
    was_finished[ids[i]] = FINISHED[t.status]
  else
    new_count = new_count + 1
  end
end
local removed = {}
local needed = redis.call("HLEN", K_TASKS) + new_count - max_tasks
if needed > 0 then
  local victims = {}
  for _, id in ipairs(redis.call("ZRANGE", K_FINISHED, 0, needed + #ids - 1)) do
    if #victims == needed then break end
    if not in_batch[id] then victims[#victims + 1] = id end
  end
  if #victims < needed then return {"capacity", needed} end
  for _, id in ipairs(victims) do remove(id); removed[#removed + 1] = id end
end

local last = {}
for position, ev in ipairs(events) do
  local id = ev.task_id
  local t = tasks[id]
  if not t then
    t = new_task(id)
    tasks[id] = t
  end
  apply(t, ev)
  last[id] = position
end

-- Write each task once, versions in the order of its last event: the insertion order
-- TaskStore ends a batch with, and so the same eviction order.
table.sort(ids, function(a, b) return last[a] < last[b] end)
local base = redis.call("INCRBY", K_SEQ, #ids) - #ids
local records, hash, updated, finished, unfinished = {}, {}, {}, {}, {}
for k, id in ipairs(ids) do
  local t = tasks[id]
  t.v = base + k
  local encoded = encode(t)
  records[k] = encoded
  hash[#hash + 1] = id
  hash[#hash + 1] = encoded
  updated[#updated + 1] = num(t.updated_at)
  updated[#updated + 1] = id
  if FINISHED[t.status] then
    finished[#finished + 1] = t.v
    finished[#finished + 1] = id
  elseif was_finished[id] then
    unfinished[#unfinished + 1] = id
  end
end
redis.call("HSET", K_TASKS, unpack(hash))
redis.call("ZADD", K_UPDATED, unpack(updated))
if #finished > 0 then redis.call("ZADD", K_FINISHED, unpack(finished)) end
if #unfinished > 0 then redis.call("ZREM", K_FINISHED, unpack(unfinished)) end
publish(maxlen, records, removed, ARGV[5])
return result(records, removed)
"""

REMOVE = PRELUDE + """
-- ARGV: maxlen, id, origin
local removed = {}
if remove(ARGV[2]) then removed[1] = ARGV[2] end
publish(ARGV[1], {}, removed, ARGV[3])
return result({}, removed)
"""

REMOVE_WHERE = PRELUDE + """
-- ARGV: maxlen, now, statuses (JSON array or ""), older_than ("" for any), origin
local maxlen, now = ARGV[1], tonumber(ARGV[2])
local wanted = nil
if ARGV[3] ~= "" then
  wanted = {}
  for _, s in ipairs(cjson.decode(ARGV[3])) do wanted[s] = true end
end
local older = tonumber(ARGV[4])
local candidates
if older then
  candidates = redis.call("ZRANGEBYSCORE", K_UPDATED, "-inf", num(now - older), "WITHSCORES")
else
  candidates = {}
  for _, id in ipairs(redis.call("HKEYS", K_TASKS)) do
    candidates[#candidates + 1] = id
    candidates[#candidates + 1] = "0"
  end
end
local removed = {}
for i = 1, #candidates, 2 do
  local id = candidates[i]
  local keep = older and not (now - tonumber(candidates[i + 1]) > older)
  if not keep and wanted then
    local t = load(id)
    keep = t == nil or not wanted[t.status]
  end
  if not keep and remove(id) then removed[#removed + 1] = id end
end
publish(maxlen, {}, removed, ARGV[5])
return result({}, removed)
"""

SWEEP = PRELUDE + """
-- ARGV: maxlen, now, retention, stale, max_age, lease_ms, owner
local maxlen, now = ARGV[1], tonumber(ARGV[2])
local retention, stale, max_age = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local lease_ms = tonumber(ARGV[6])
if lease_ms > 0 then
  -- The cleanup lease: its holder sweeps and renews it; the others wait until it expires.
  local holder = redis.call("GET", K_LEASE)
  if holder and holder ~= ARGV[7] then return {"busy"} end
  redis.call("SET", K_LEASE, ARGV[7], "PX", lease_ms)
end
local horizon = nil
for _, limit in ipairs({retention, stale, max_age}) do
  if limit > 0 and (horizon == nil or limit < horizon) then horizon = limit end
end
if horizon == nil then return result({}, {}) end

local records, removed = {}, {}
for _, id in ipairs(redis.call("ZRANGEBYSCORE", K_UPDATED, "-inf", num(now - horizon))) do
  local t = load(id)
  local idle = t and (now - t.updated_at) or 0
  if t and idle > horizon then
    if max_age > 0 and idle > max_age then
      remove(id); removed[#removed + 1] = id
    elseif FINISHED[t.status] then
      if retention > 0 and idle > retention then remove(id); removed[#removed + 1] = id end
    elseif ACTIVE[t.status] and stale > 0 and idle > stale then
      t.status, t.stale_at, t.eta = "stale", now, NULL
      local encoded = stamp(t)
      redis.call("HSET", K_TASKS, id, encoded)
      records[#records + 1] = encoded
    end
  end
end
publish(maxlen, records, removed, ARGV[7])
return result(records, removed)
"""

IMPORT = PRELUDE + """
-- ARGV: maxlen, records (JSON array of records, oldest update first)
local records = {}
for i, t in ipairs(cjson.decode(ARGV[2])) do
  records[i] = save(t)
end
publish(ARGV[1], {}, {}, "", true)
return result(records, {})
"""
