"""The Lua scripts that apply task changes inside Redis, atomically, as `store.py` does in memory.

Each script is one transaction: it reads and writes the task hash and its
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
updated_at, written only by the previous layout: see `upgrade_layout`), finished
(zset: write version of finished tasks, the eviction order), seq (the write
version counter), stream, lease, layout (the layout version), then the three
sweep queues (zsets: updated_at of the active, stale and finished tasks, the
queues of `store.sweep_queue`). A sweep reads each queue from its idle end, only
as far as tasks are due, and at most `limit` of them per call.
"""

from __future__ import annotations

import struct

from progressistad import contract
from progressistad.core.store import RATE_SMOOTHING

TEXT_FIELDS = ("desc", "unit", "meta")
NUMBER_FIELDS = ("total", "n", "timestamp", "created_at", "updated_at", "done_at", "stale_at",
                 "rate", "eta", "sn", "st", "adn", "adt", "w", "v")
"""The record's numbers, in order: the served ones, then the rate state and the version."""
RECORD_HEAD = ">BI"
"""Status code (1-based index in contract.STATUSES) and the null mask (bit i: number i,
bit 15 + j: text j)."""


def number_at(name: str) -> int:
    """Where number `name` starts in a record, 1-based as Lua's string functions count."""
    return struct.calcsize(RECORD_HEAD + "d" * NUMBER_FIELDS.index(name)) + 1


LAYOUT_VERSION = "2"
"""Version 2 added the per-queue sweep sets; the previous layout had no version key."""


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
local UPDATED_AT_AT, STALE_AT_AT, ETA_AT, V_AT = %(updated_at_at)d, %(stale_at_at)d, %(eta_at)d, %(v_at)d
local STALE_AT_BIT, ETA_BIT = %(stale_at_bit)d, %(eta_bit)d
local LAYOUT = "%(layout)s"
local K_TASKS, K_UPDATED, K_FINISHED, K_SEQ, K_STREAM, K_LEASE, K_LAYOUT =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local K_ACTIVE, K_STALE, K_DONE = KEYS[8], KEYS[9], KEYS[10]
local QUEUES = {K_ACTIVE, K_STALE, K_DONE}
local PAGE = 1000
-- Entries one command reads or writes, at most: bounds a script's memory and Lua's unpack.

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

-- Status and updated_at of a record without decoding the rest.
local function peek(raw)
  return STATUS_NAMES[string.byte(raw, 1)], struct.unpack(">d", raw, UPDATED_AT_AT)
end

-- The sweep queue of a task with `status`, as store.sweep_queue.
local function queue_of(status)
  if FINISHED[status] then return K_DONE end
  if ACTIVE[status] then return K_ACTIVE end
  return K_STALE
end

-- Put `id` in the sweep queue of `status` at `updated_at`, and in no other.
local function file(id, status, updated_at)
  local home = queue_of(status)
  for _, key in ipairs(QUEUES) do
    if key ~= home then redis.call("ZREM", key, id) end
  end
  redis.call("ZADD", home, num(updated_at), id)
end

-- File each of `ids` as its record says; ids no longer in the hash leave every queue.
local function refile(ids)
  for first = 1, #ids, PAGE do
    local chunk = {unpack(ids, first, math.min(first + PAGE - 1, #ids))}
    local added, others = {}, {}
    for _, key in ipairs(QUEUES) do added[key], others[key] = {}, {} end
    for i, raw in ipairs(redis.call("HMGET", K_TASKS, unpack(chunk))) do
      local home = nil
      if raw then
        local status, updated_at = peek(raw)
        home = queue_of(status)
        local members = added[home]
        members[#members + 1] = num(updated_at)
        members[#members + 1] = chunk[i]
      end
      for _, key in ipairs(QUEUES) do
        if key ~= home then others[key][#others[key] + 1] = chunk[i] end
      end
    end
    for _, key in ipairs(QUEUES) do
      if #others[key] > 0 then redis.call("ZREM", key, unpack(others[key])) end
      if #added[key] > 0 then redis.call("ZADD", key, unpack(added[key])) end
    end
  end
end

-- Bring tasks written by the previous layout into the sweep queues, at most `budget`
-- (math.huge: all); return how many it filed and whether none is left. That layout set
-- no version key and added every task it wrote to K_UPDATED, which this one never
-- writes: K_UPDATED lists the tasks to file, those of a keyspace not upgraded yet or
-- those a daemon of the previous release, still in the group, wrote since.
local function upgrade_layout(budget)
  local ids
  if redis.call("EXISTS", K_UPDATED) == 1 then
    ids = redis.call("ZRANGE", K_UPDATED, 0, budget == math.huge and -1 or budget - 1)
    refile(ids)
    for first = 1, #ids, PAGE do
      redis.call("ZREM", K_UPDATED, unpack(ids, first, math.min(first + PAGE - 1, #ids)))
    end
    if redis.call("EXISTS", K_UPDATED) == 1 then return #ids, false end
  elseif redis.call("GET", K_LAYOUT) ~= LAYOUT then
    -- A new keyspace, or one that lost its version key: file every task there is.
    ids = redis.call("HKEYS", K_TASKS)
    refile(ids)
  else
    return 0, true
  end
  redis.call("SET", K_LAYOUT, LAYOUT)
  return #ids, true
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
  file(t.id, t.status, t.updated_at)
  if FINISHED[t.status] then
    redis.call("ZADD", K_FINISHED, t.v, t.id)
  else
    redis.call("ZREM", K_FINISHED, t.id)
  end
  return encoded
end

local function remove(id)
  local gone = redis.call("HDEL", K_TASKS, id)
  redis.call("ZREM", K_FINISHED, id)
  for _, key in ipairs(QUEUES) do redis.call("ZREM", key, id) end
  return gone == 1
end

-- Publish what changed and return it: the records back to back, removed ids joined by NUL,
-- each joined once (a sweep step's records run to hundreds of kilobytes).
local function publish(maxlen, records, removed, origin)
  -- origin: the daemon that made the change (it has applied it already and skips it).
  local blob, ids = table.concat(records), table.concat(removed, "\\0")
  if blob ~= "" or ids ~= "" then
    redis.call("XADD", K_STREAM, "MAXLEN", "~", maxlen, "*", "o", origin or "", "t", blob, "r", ids)
  end
  return {"ok", blob, ids}
end
""" % {
    "smoothing": RATE_SMOOTHING,
    "text_fields": _lua_list(TEXT_FIELDS),
    "number_fields": _lua_list(NUMBER_FIELDS),
    "status_names": _lua_list(contract.STATUSES),
    "record_head": RECORD_HEAD,
    "finished": _lua_set(contract.FINISHED_STATUSES),
    "active": _lua_set(contract.ACTIVE_STATUSES),
    "updated_at_at": number_at("updated_at"),
    "stale_at_at": number_at("stale_at"),
    "eta_at": number_at("eta"),
    "v_at": number_at("v"),
    "stale_at_bit": NUMBER_FIELDS.index("stale_at"),
    "eta_bit": NUMBER_FIELDS.index("eta"),
    "layout": LAYOUT_VERSION,
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
local tasks, was_finished, was_in, new_count = {}, {}, {}, 0
for i, raw in ipairs(redis.call("HMGET", K_TASKS, unpack(ids))) do
  if raw then
    local t = decode(raw)
    tasks[ids[i]] = t
    was_finished[ids[i]] = FINISHED[t.status]
    was_in[ids[i]] = queue_of(t.status)
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
local records, hash, finished, unfinished, filed, left = {}, {}, {}, {}, {}, {}
for _, key in ipairs(QUEUES) do filed[key], left[key] = {}, {} end
for k, id in ipairs(ids) do
  local t = tasks[id]
  t.v = base + k
  local encoded = encode(t)
  records[k] = encoded
  hash[#hash + 1] = id
  hash[#hash + 1] = encoded
  local home = queue_of(t.status)
  local queue = filed[home]
  queue[#queue + 1] = num(t.updated_at)
  queue[#queue + 1] = id
  if was_in[id] and was_in[id] ~= home then
    queue = left[was_in[id]]
    queue[#queue + 1] = id
  end
  if FINISHED[t.status] then
    finished[#finished + 1] = t.v
    finished[#finished + 1] = id
  elseif was_finished[id] then
    unfinished[#unfinished + 1] = id
  end
end
redis.call("HSET", K_TASKS, unpack(hash))
for _, key in ipairs(QUEUES) do
  if #filed[key] > 0 then redis.call("ZADD", key, unpack(filed[key])) end
  if #left[key] > 0 then redis.call("ZREM", key, unpack(left[key])) end
end
if #finished > 0 then redis.call("ZADD", K_FINISHED, unpack(finished)) end
if #unfinished > 0 then redis.call("ZREM", K_FINISHED, unpack(unfinished)) end
return publish(maxlen, records, removed, ARGV[5])
"""

REMOVE = PRELUDE + """
-- ARGV: maxlen, id, origin
local removed = {}
if remove(ARGV[2]) then removed[1] = ARGV[2] end
return publish(ARGV[1], {}, removed, ARGV[3])
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
  upgrade_layout(math.huge)
  candidates = {}
  for _, key in ipairs(QUEUES) do
    for _, item in ipairs(redis.call("ZRANGEBYSCORE", key, "-inf", num(now - older), "WITHSCORES")) do
      candidates[#candidates + 1] = item
    end
  end
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
return publish(maxlen, {}, removed, ARGV[5])
"""

SWEEP = PRELUDE + """
-- ARGV: maxlen, now, retention, stale, max_age, lease_ms, owner, limit (0: no limit)
local maxlen, now = ARGV[1], tonumber(ARGV[2])
local retention, stale, max_age = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local lease_ms, budget = tonumber(ARGV[6]), tonumber(ARGV[8])
if lease_ms > 0 then
  -- The cleanup lease: its holder sweeps and renews it; the others wait until it expires.
  local holder = redis.call("GET", K_LEASE)
  if holder and holder ~= ARGV[7] then return {"busy"} end
  redis.call("SET", K_LEASE, ARGV[7], "PX", lease_ms)
end
if budget <= 0 then budget = math.huge end
-- Filing counts against the budget; while tasks are left to file, it takes all of it.
budget = budget - upgrade_layout(budget)

local records, removed = {}, {}

local function horizon(limits)
  local least = nil
  for _, limit in ipairs(limits) do
    if limit > 0 and (least == nil or limit < least) then least = limit end
  end
  return least
end

-- Whether a task idle `idle` seconds is removed, as store.sweep_action; past its queue's
-- horizon, a task that is not removed is active and marked stale.
local function doomed(status, idle)
  return (max_age > 0 and idle > max_age) or (FINISHED[status] and retention > 0 and idle > retention)
end

-- A record marked stale at `now` with version `v`: what encode gives for the decoded task
-- with status, stale_at, eta and v changed, made by replacing those bytes only.
local function as_stale(raw, v)
  local _, mask = struct.unpack(">BI", raw)
  mask = bit.bor(bit.band(mask, bit.bnot(2 ^ STALE_AT_BIT)), 2 ^ ETA_BIT)
  return struct.pack(">BI", STATUS_CODES.stale, mask) .. raw:sub(6, STALE_AT_AT - 1)
    .. struct.pack(">d", now) .. raw:sub(STALE_AT_AT + 8, ETA_AT - 1) .. struct.pack(">d", 0)
    .. raw:sub(ETA_AT + 8, V_AT - 1) .. struct.pack(">d", v) .. raw:sub(V_AT + 8)
end

-- Mark active tasks stale: `due` holds their ids, records and scores (updated_at), in turn.
local function mark_stale(due)
  local hash, scores, ids = {}, {}, {}
  local count = #due / 3
  local base = redis.call("INCRBY", K_SEQ, count) - count
  for k = 1, count do
    local id, raw, score = due[3 * k - 2], due[3 * k - 1], due[3 * k]
    local encoded = as_stale(raw, base + k)
    records[#records + 1] = encoded
    hash[2 * k - 1], hash[2 * k] = id, encoded
    scores[2 * k - 1], scores[2 * k] = score, id
    ids[k] = id
  end
  redis.call("HSET", K_TASKS, unpack(hash))
  redis.call("ZREM", K_ACTIVE, unpack(ids))
  redis.call("ZADD", K_STALE, unpack(scores))
end

local function drop(key, ids)
  redis.call("HDEL", K_TASKS, unpack(ids))
  redis.call("ZREM", key, unpack(ids))
  if key == K_DONE then redis.call("ZREM", K_FINISHED, unpack(ids)) end
  for _, id in ipairs(ids) do removed[#removed + 1] = id end
end

-- Act on the due tasks of one queue, idlest first, at most `budget`; return how many.
-- Every entry read is due, up to the first that is not (a boundary the score bound
-- can let through), except entries that disagree with their record (left by a daemon
-- of the previous layout): those are refiled, not counted, and the queue read again.
local function sweep_queue(key, limit)
  local done = 0
  while done < budget do
    local page = math.min(PAGE, budget - done)
    local entries = redis.call("ZRANGEBYSCORE", key, "-inf", num(now - limit), "WITHSCORES",
                               "LIMIT", 0, page)
    if #entries == 0 then return done end
    local ids = {}
    for i = 1, #entries, 2 do ids[#ids + 1] = entries[i] end
    local raws = redis.call("HMGET", K_TASKS, unpack(ids))
    local misfiled, gone, staled, finished_reading = {}, {}, {}, #ids < page
    for i, id in ipairs(ids) do
      local raw, status, updated_at = raws[i], nil, nil
      if raw then status, updated_at = peek(raw) end
      local score = entries[2 * i]
      if not raw or queue_of(status) ~= key or updated_at ~= tonumber(score) then
        misfiled[#misfiled + 1] = id
      elseif now - updated_at <= limit then
        finished_reading = true
        break
      elseif doomed(status, now - updated_at) then
        gone[#gone + 1] = id
      else
        staled[#staled + 1], staled[#staled + 2], staled[#staled + 3] = id, raw, score
      end
    end
    if #gone > 0 then drop(key, gone) end
    if #staled > 0 then mark_stale(staled) end
    done = done + #gone + #staled / 3
    if #misfiled > 0 then
      refile(misfiled)
    elseif finished_reading then
      return done
    end
  end
  return done
end

for _, queue in ipairs({{K_ACTIVE, {stale, max_age}}, {K_STALE, {max_age}},
                        {K_DONE, {retention, max_age}}}) do
  local limit = horizon(queue[2])
  if limit and budget > 0 then budget = budget - sweep_queue(queue[1], limit) end
end
local reply = publish(maxlen, records, removed, ARGV[7])
-- Whether this call stopped at its limit: the sweep goes on in another call.
reply[4] = budget <= 0 and "more" or "done"
return reply
"""

UPGRADE = PRELUDE + """
-- ARGV: limit (0: no limit). Returns how many tasks of the previous layout it filed, and
-- 1 when none is left.
local budget = tonumber(ARGV[1])
local filed, settled = upgrade_layout(budget > 0 and budget or math.huge)
return {filed, settled and 1 or 0}
"""

IMPORT = PRELUDE + """
-- ARGV: maxlen, records (JSON array of records, oldest update first)
local records = {}
for i, t in ipairs(cjson.decode(ARGV[2])) do
  records[i] = save(t)
end
-- Every daemon reloads all tasks rather than reading the records from the stream.
redis.call("XADD", K_STREAM, "MAXLEN", "~", ARGV[1], "*", "o", "", "t", "", "r", "", "resync", "1")
return {"ok", table.concat(records), ""}
"""
