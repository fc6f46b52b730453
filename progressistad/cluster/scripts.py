"""The Lua scripts that change tasks inside Redis, atomically, as `core/store.py` does in memory.

Each script is one transaction: it reads and writes the task hash and its
indexes, then appends what changed to the group's stream, so every daemon sees
changes in the order they were made. Records are packed as `records` says.

The scripts hold no constant or table of their own: statuses, record layout, key
order, reply and stream field names, the rate's weights, a new task's fields, the
fields an event sets and the telemetry limits come from Python (`CONSTANTS`,
declared ahead of every script), and the sweep gets each queue's rules
(`SweepPolicy.rules`) as an argument. What they do restate of `Task` and
`TaskStore` (applying an event, rate, eta, merging metrics and their cap, the log
tail, making room, the sweep's walk of its queues) has a parity test per rule
(tests/cluster/test_parity.py).

KEYS, in every script, are `KEY_NAMES` under the prefix: tasks (hash: id fragment
-> record), updated (zset: updated_at, written only by the previous layout: see
`upgrade_layout`), finished (zset: write version of finished tasks, the eviction
order), seq (the write version counter), stream, lease, layout (the layout
version), telemetry (hash: id fragment -> telemetry record), logs (hash: id
fragment -> log tail), then the sweep queues (zsets: updated_at of the tasks of each queue of
`store.sweep_queue`). A sweep reads each queue from its idle end, only as far as
tasks are due, and at most `limit` of them per call.
"""

from __future__ import annotations

import json
import math
import struct
from typing import Any, Dict, List, Mapping, Tuple

from progressistad import contract
from progressistad.cluster import records
from progressistad.core.store import (
    APPLIED_FIELDS, FIRST_SAMPLE_WEIGHT, QUEUE_FINISHED, RATE_SMOOTHING, SWEEP_QUEUES,
    SWEEP_REMOVE, SWEEP_STALE, SweepPolicy, Task, sweep_queue,
)

LAYOUT_VERSION = "2"
"""Version 2 added the per-queue sweep sets; the previous layout had no version key."""

SCRIPT_KEYS = (("K_TASKS", "tasks"), ("K_UPDATED", "updated"), ("K_FINISHED", "finished"),
               ("K_SEQ", "seq"), ("K_STREAM", "events"), ("K_LEASE", "cleanup-lease"),
               ("K_LAYOUT", "layout"), ("K_TELEMETRY", "telemetry"), ("K_LOGS", "logs")) + tuple(
    (f"K_QUEUE_{queue.upper()}", f"sweep:{queue}") for queue in SWEEP_QUEUES)
"""Each key's name in the scripts and under the prefix, in the order the scripts take them."""
KEY_NAMES = tuple(name for _, name in SCRIPT_KEYS)

PAGE = 1000
"""Entries one command reads or writes, at most: bounds a script's memory and Lua's unpack."""

REPLY = {"OK": "ok", "CAPACITY": "capacity", "REFUSED": "refused", "BUSY": "busy",
         "MORE": "more", "DONE": "done"}
"""What a script's reply starts with: done, the tasks do not fit, an event would leave its task
too many metrics, another daemon sweeps; and a sweep call's last item: whether it stopped at
its limit (more: call again) or not."""
STREAM = {"ORIGIN": "o", "TASKS": "t", "REMOVED": "r", "TELEMETRY": "x", "RESYNC": "resync"}
"""Fields of a stream entry: the daemon that wrote it, records, removed ids, telemetry records
(one per record, or none when the change left telemetry as it was), "reload all"."""


class Lua(str):
    """Lua source to declare as it is, not as a string."""


def lua_literal(value: Any) -> str:
    """`value` as a Lua expression: None is cjson's null, a set a table of `true`."""
    if isinstance(value, Lua):
        return value
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValueError(f"no Lua literal for {value!r}")
        return repr(value)
    if isinstance(value, str):
        return '"' + "".join(c if c.isprintable() and c.isascii() and c not in '"\\'
                             else "\\%d" % ord(c) for c in value) + '"'
    if isinstance(value, (set, frozenset)):
        return "{" + ", ".join(f"[{lua_literal(v)}] = true" for v in sorted(value)) + "}"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"[{lua_literal(k)}] = {lua_literal(v)}"
                               for k, v in value.items()) + "}"
    if isinstance(value, (tuple, list)):
        return "{" + ", ".join(lua_literal(v) for v in value) + "}"
    raise TypeError(f"no Lua literal for {type(value).__name__}")


def _new_task() -> Tuple[Dict[str, Any], List[str]]:
    """A new task's record fields as `Task` makes one, and those it sets to `now`: the ones
    that differ between tasks made at two instants."""
    early, late = (records.task_record(Task("", now)) for now in (0.0, 1.0))
    fields = {name: value for name, value in early.items() if name != "id"}
    return fields, [name for name in fields if early[name] != late[name]]


def _keys() -> Dict[str, Any]:
    """The keys (`SCRIPT_KEYS`), the sweep queues' keys in a list and by queue, and the queue of
    each status."""
    queue_keys = {queue: Lua(local) for (local, _), queue in zip(SCRIPT_KEYS[-len(SWEEP_QUEUES):],
                                                                SWEEP_QUEUES)}
    keys: Dict[str, Any] = {local: Lua(f"KEYS[{i}]") for i, (local, _) in enumerate(SCRIPT_KEYS, 1)}
    keys.update(QUEUES=[queue_keys[queue] for queue in SWEEP_QUEUES], QUEUE_KEY=queue_keys,
                QUEUE_OF={status: sweep_queue(status) for status in contract.STATUSES},
                QUEUE_FINISHED=QUEUE_FINISHED)
    return keys


def _rules() -> Dict[str, Any]:
    """Statuses, a new task, the fields an event sets, the rate's weights, the sweep's actions."""
    new_task, new_task_now = _new_task()
    rules = {name: getattr(contract, name) for name in ("START", "STALE")}
    rules.update(STATUS_NAMES=contract.STATUSES, DEFAULT_STATUS=contract.DEFAULT_EVENT_STATUS,
                 FINISHED=contract.FINISHED_STATUSES, ACTIVE=contract.ACTIVE_STATUSES,
                 APPLIED=APPLIED_FIELDS, NEW_TASK=new_task, NEW_TASK_NOW=new_task_now,
                 SMOOTHING=RATE_SMOOTHING, FIRST_WEIGHT=FIRST_SAMPLE_WEIGHT,
                 ACT_STALE=SWEEP_STALE, ACT_REMOVE=SWEEP_REMOVE,
                 METRICS_MAX=contract.METRICS_MAX_KEYS, TAIL_LINES=contract.LOG_TAIL_LINES)
    return rules


def _record_layout() -> Dict[str, Any]:
    """The record's fields and sizes, and where the numbers a sweep rewrites in place sit."""
    numbers = records.NUMBER_FIELDS
    assert numbers.index("stale_at") < numbers.index("eta") < numbers.index("v")  # as_stale
    layout: Dict[str, Any] = {f"{name.upper()}_AT": records.number_at(name)
                              for name in ("updated_at", "stale_at", "eta", "v")}
    layout.update({f"{name.upper()}_BIT": numbers.index(name) for name in ("stale_at", "eta")})
    layout.update(TEXT_FIELDS=records.TEXT_FIELDS, NUMBER_FIELDS=numbers,
                  RECORD_HEAD=records.RECORD_HEAD, HEAD_SIZE=struct.calcsize(records.RECORD_HEAD),
                  NUMBER=records.NUMBER, NUMBER_SIZE=struct.calcsize(records.NUMBER),
                  RECORD=records.RECORD_HEAD + records.NUMBER[1:] * len(numbers)
                  + "s" * (1 + len(records.TEXT_FIELDS)),
                  SEPARATOR=records.SEPARATOR, TELEMETRY_FIELDS=records.TELEMETRY_FIELDS,
                  METRIC_SEPARATOR=records.METRIC_SEPARATOR,
                  NO_TELEMETRY=records.NO_TELEMETRY.decode())
    return layout


def _declarations() -> Dict[str, Any]:
    declared = {**_keys(), **_rules(), **_record_layout(), "LAYOUT": LAYOUT_VERSION, "PAGE": PAGE}
    declared.update({f"REPLY_{key}": value for key, value in REPLY.items()})
    declared.update({f"STREAM_{key}": value for key, value in STREAM.items()})
    return declared


CONSTANTS = _declarations()
"""Every name the scripts take from Python, and its value."""


def sweep_plan(policy: SweepPolicy) -> str:
    """The SWEEP script's queues argument: each queue with a horizon, its horizon and rules."""
    return json.dumps([[queue, policy.horizon(queue), policy.rules(queue)]
                       for queue in SWEEP_QUEUES if policy.horizon(queue) is not None])


DECLARATIONS = "local NULL = cjson.null\n" + "".join(
    f"local {name} = {lua_literal(value)}\n" for name, value in CONSTANTS.items())
"""`CONSTANTS` as Lua locals, ahead of every script."""

PRELUDE = DECLARATIONS + """
local STATUS_CODES = {}
for code, name in ipairs(STATUS_NAMES) do STATUS_CODES[name] = code end
local TEXT_BIT = #NUMBER_FIELDS

local function is_null(x) return x == nil or x == NULL end
-- Scores as strings with 17 digits: Redis would format a Lua number with only 14.
local function num(x) return string.format("%.17g", x) end

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
  return STATUS_NAMES[string.byte(raw, 1)], struct.unpack(NUMBER, raw, UPDATED_AT_AT)
end

-- The sweep queue of a task with `status`, as store.sweep_queue.
local function queue_of(status)
  return QUEUE_KEY[QUEUE_OF[status]]
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

-- Forget the telemetry and log tails of `ids` (a table of at most PAGE ids).
local function forget_telemetry(ids)
  redis.call("HDEL", K_TELEMETRY, unpack(ids))
  redis.call("HDEL", K_LOGS, unpack(ids))
end

local function remove(id)
  local gone = redis.call("HDEL", K_TASKS, id)
  redis.call("ZREM", K_FINISHED, id)
  for _, key in ipairs(QUEUES) do redis.call("ZREM", key, id) end
  forget_telemetry({id})
  return gone == 1
end

-- Read a telemetry record into task `t` (t.postfix, t.metrics, t.last_log, t.log_lines, as
-- TELEMETRY_FIELDS names them); an empty text is none.
local function read_telemetry(t, raw)
  if not raw then return end
  local pos = 1
  for _, name in ipairs(TELEMETRY_FIELDS) do
    local stop = string.find(raw, SEPARATOR, pos, true)
    local text = string.sub(raw, pos, stop - 1)
    if text ~= "" then t[name] = text end
    pos = stop + 1
  end
  t.log_lines = tonumber(t.log_lines) or 0
end

local function telemetry_record(t)
  local texts = {}
  for i, name in ipairs(TELEMETRY_FIELDS) do
    local value = t[name]
    if is_null(value) or value == 0 then texts[i] = "" else texts[i] = tostring(value) end
  end
  return table.concat(texts, SEPARATOR) .. SEPARATOR
end

-- Store the telemetry records of `ids` (tasks `tasks`) and return them in that order; a task
-- without telemetry has its entries deleted (orphans a daemon of the previous release left
-- when it removed a task of the same id go with them).
local function save_telemetry(ids, tasks)
  local written, hash, none = {}, {}, {}
  for k, id in ipairs(ids) do
    local record = telemetry_record(tasks[id])
    written[k] = record
    if record == NO_TELEMETRY then
      none[#none + 1] = id
    else
      hash[#hash + 1] = id
      hash[#hash + 1] = record
    end
  end
  if #hash > 0 then redis.call("HSET", K_TELEMETRY, unpack(hash)) end
  if #none > 0 then forget_telemetry(none) end
  return written
end

-- Publish what changed and return it: the records back to back, removed ids joined by
-- SEPARATOR, each joined once (a sweep step's records run to hundreds of kilobytes), and
-- the telemetry records of the records when the change wrote them (nil: it did not).
local function publish(maxlen, records, removed, origin, telemetry)
  -- origin: the daemon that made the change (it has applied it already and skips it).
  local blob, ids = table.concat(records), table.concat(removed, SEPARATOR)
  local told = telemetry and table.concat(telemetry) or ""
  if blob ~= "" or ids ~= "" then
    if told ~= "" then
      redis.call("XADD", K_STREAM, "MAXLEN", "~", maxlen, "*", STREAM_ORIGIN, origin or "",
                 STREAM_TASKS, blob, STREAM_REMOVED, ids, STREAM_TELEMETRY, told)
    else
      redis.call("XADD", K_STREAM, "MAXLEN", "~", maxlen, "*", STREAM_ORIGIN, origin or "",
                 STREAM_TASKS, blob, STREAM_REMOVED, ids)
    end
  end
  return {REPLY_OK, blob, ids, told}
end
"""

APPLY = PRELUDE + """
-- ARGV: now, max_tasks, maxlen, events (JSON array; text fields as JSON fragments), origin
local now, max_tasks, maxlen = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local events = cjson.decode(ARGV[4])

local function new_task(id)
  local t = {id = id}
  for name, value in pairs(NEW_TASK) do t[name] = value end
  for _, name in ipairs(NEW_TASK_NOW) do t[name] = now end
  return t
end

-- JSON has no Infinity: a ratio that overflows says nothing, as store._finite_or_none.
local function finite_or_null(x)
  if x ~= x or x == math.huge or x == -math.huge then return NULL end
  return x
end

local function reset_rate(t)
  t.sn, t.st, t.adn, t.adt, t.rate = t.n, now, NULL, NULL, NULL
end

local function estimate_eta(t)
  if not ACTIVE[t.status] or is_null(t.total) then return NULL end
  local remaining = t.total - t.n
  if remaining <= 0 then return 0.0 end
  if is_null(t.rate) or t.rate <= 0 then return NULL end
  return finite_or_null(remaining / t.rate)
end

local function update_rate(t)
  -- Same-instant events (one batch) fold into the current sample, as Task._update_rate does.
  if t.n < t.sn then reset_rate(t) end
  local dn, dt = t.n - t.sn, now - t.st
  if dt > 0 then
    if is_null(t.adn) then t.w = FIRST_WEIGHT else t.w = SMOOTHING end
    t.adn = t.w * dn + (1 - t.w) * (is_null(t.adn) and 0.0 or t.adn)
    t.adt = t.w * dt + (1 - t.w) * (is_null(t.adt) and 0.0 or t.adt)
  elseif not is_null(t.adn) and dn ~= 0 then
    t.adn = t.adn + t.w * dn
  else
    t.eta = estimate_eta(t)
    return
  end
  t.rate = finite_or_null(t.adn / t.adt)
  t.sn, t.st = t.n, now
  t.eta = estimate_eta(t)
end

-- A task's metrics as merge_metrics keeps them: keys in order of arrival (false where one
-- went), values (fragments) by key, and how many there are.
local function metrics_of(text)
  local m = {keys = {}, at = {}, values = {}, count = 0}
  local pos = 1
  while text do
    local key_end = string.find(text, METRIC_SEPARATOR, pos, true)
    local value_end = string.find(text, METRIC_SEPARATOR, key_end + 1, true)
    local key = string.sub(text, pos, key_end - 1)
    m.count = m.count + 1
    m.keys[m.count], m.at[key] = key, m.count
    m.values[key] = string.sub(text, key_end + 1, (value_end or 0) - 1)
    if not value_end then break end
    pos = value_end + 1
  end
  return m
end

-- Merge an event's metrics ([key, value] fragment pairs) into `m`: null removes a key.
local function merge_metrics(m, update)
  for _, pair in ipairs(update) do
    local key, value = pair[1], pair[2]
    if is_null(value) then
      if m.at[key] then
        m.keys[m.at[key]], m.at[key], m.values[key] = false, nil, nil
        m.count = m.count - 1
      end
    elseif m.values[key] then
      m.values[key] = value
    else
      m.keys[#m.keys + 1] = key
      m.at[key], m.values[key] = #m.keys, value
      m.count = m.count + 1
    end
  end
end

local function metrics_text(m)
  if m.count == 0 then return nil end
  local parts = {}
  for _, key in ipairs(m.keys) do
    if key then
      parts[#parts + 1] = key
      parts[#parts + 1] = m.values[key]
    end
  end
  return table.concat(parts, METRIC_SEPARATOR)
end

-- `tail` (`count` lines) with `lines` appended, the last TAIL_LINES kept; and its count.
local function extend_tail(tail, count, lines)
  if #lines >= TAIL_LINES then
    return table.concat(lines, SEPARATOR, #lines - TAIL_LINES + 1, #lines), TAIL_LINES
  end
  local appended = table.concat(lines, SEPARATOR)
  if count == 0 then return appended, #lines end
  local pos = 1
  for _ = 1, count + #lines - TAIL_LINES do pos = string.find(tail, SEPARATOR, pos, true) + 1 end
  return string.sub(tail, pos) .. SEPARATOR .. appended, math.min(count + #lines, TAIL_LINES)
end

local function apply(t, ev)
  local status = ev.status
  if is_null(status) then status = DEFAULT_STATUS end
  local was_finished = FINISHED[t.status]
  if status == START and was_finished then
    t.created_at = now
    reset_rate(t)
  end
  for _, name in ipairs(APPLIED) do
    if ev[name] ~= nil then t[name] = ev[name] end
  end
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

-- Telemetry is read and written only for a batch that sends some; a new task has none,
-- whatever a daemon of the previous release left under its id.
local telemetry_sent = false
for _, ev in ipairs(events) do
  if ev.metrics or ev.postfix or ev.log then
    telemetry_sent = true
    break
  end
end
if telemetry_sent then
  for i, raw in ipairs(redis.call("HMGET", K_TELEMETRY, unpack(ids))) do
    if tasks[ids[i]] then read_telemetry(tasks[ids[i]], raw) end
  end
end

-- The metrics cap, checked before anything changes, as TaskStore._check_metrics: the
-- batch is refused, naming the first event that would leave its task too many.
local merged = {}
for position, ev in ipairs(events) do
  if ev.metrics then
    local m = merged[ev.task_id]
    if not m then
      local t = tasks[ev.task_id]
      m = metrics_of(t and t.metrics)
      merged[ev.task_id] = m
    end
    merge_metrics(m, ev.metrics)
    if m.count > METRICS_MAX then return {REPLY_REFUSED, position - 1, m.count} end
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
  if #victims < needed then return {REPLY_CAPACITY, needed} end
  for _, id in ipairs(victims) do remove(id); removed[#removed + 1] = id end
end

local last, logged, logged_ids = {}, {}, {}
for position, ev in ipairs(events) do
  local id = ev.task_id
  local t = tasks[id]
  if not t then
    t = new_task(id)
    tasks[id] = t
  end
  apply(t, ev)
  last[id] = position
  if ev.log and #ev.log > 0 then
    local lines = logged[id]
    if not lines then
      lines = {}
      logged[id] = lines
      logged_ids[#logged_ids + 1] = id
    end
    for _, line in ipairs(ev.log) do lines[#lines + 1] = line end
  end
end
for id, m in pairs(merged) do tasks[id].metrics = metrics_text(m) end
if #logged_ids > 0 then
  local tails = {}
  for i, tail in ipairs(redis.call("HMGET", K_LOGS, unpack(logged_ids))) do
    local id = logged_ids[i]
    local t, lines = tasks[id], logged[id]
    local count = tail and tonumber(t.log_lines) or 0
    tails[2 * i - 1] = id
    tails[2 * i], t.log_lines = extend_tail(tail, count, lines)
    t.last_log = lines[#lines]
  end
  redis.call("HSET", K_LOGS, unpack(tails))
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
local telemetry = nil
if telemetry_sent then
  telemetry = save_telemetry(ids, tasks)
else
  local fresh = {}
  for _, id in ipairs(ids) do
    if not was_in[id] then fresh[#fresh + 1] = id end
  end
  if #fresh > 0 then forget_telemetry(fresh) end
end
return publish(maxlen, records, removed, ARGV[5], telemetry)
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
-- ARGV: maxlen, now, lease_ms, owner, limit (0: no limit), plan (`sweep_plan`: JSON, per queue
-- with a horizon: its name, horizon and rules, each rule [idle seconds, action])
local maxlen, now = ARGV[1], tonumber(ARGV[2])
local lease_ms, budget = tonumber(ARGV[3]), tonumber(ARGV[5])
local plan = cjson.decode(ARGV[6])
if lease_ms > 0 then
  -- The cleanup lease: its holder sweeps and renews it; the others wait until it expires.
  local holder = redis.call("GET", K_LEASE)
  if holder and holder ~= ARGV[4] then return {REPLY_BUSY} end
  redis.call("SET", K_LEASE, ARGV[4], "PX", lease_ms)
end
if budget <= 0 then budget = math.huge end
-- Filing counts against the budget; while tasks are left to file, it takes all of it.
budget = budget - upgrade_layout(budget)

local records, removed = {}, {}

-- What the first of a queue's rules that applies to a task idle `idle` seconds does, as
-- store.first_action; nil when none does.
local function first_action(rules, idle)
  for _, rule in ipairs(rules) do
    if idle > rule[1] then return rule[2] end
  end
  return nil
end

-- A record marked stale at `now` with version `v`: what encode gives for the decoded task
-- with status, stale_at, eta and v changed (as Task.mark_stale), made by replacing those
-- bytes only.
local function as_stale(raw, v)
  local _, mask = struct.unpack(RECORD_HEAD, raw)
  mask = bit.bor(bit.band(mask, bit.bnot(2 ^ STALE_AT_BIT)), 2 ^ ETA_BIT)
  return struct.pack(RECORD_HEAD, STATUS_CODES[STALE], mask)
    .. raw:sub(HEAD_SIZE + 1, STALE_AT_AT - 1) .. struct.pack(NUMBER, now)
    .. raw:sub(STALE_AT_AT + NUMBER_SIZE, ETA_AT - 1) .. struct.pack(NUMBER, 0)
    .. raw:sub(ETA_AT + NUMBER_SIZE, V_AT - 1) .. struct.pack(NUMBER, v)
    .. raw:sub(V_AT + NUMBER_SIZE)
end

-- Mark tasks of queue `key` stale: `due` holds their ids, records and scores (updated_at),
-- in turn.
local function mark_stale(key, due)
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
  redis.call("ZREM", key, unpack(ids))
  redis.call("ZADD", queue_of(STALE), unpack(scores))
end

local function drop(key, ids)
  redis.call("HDEL", K_TASKS, unpack(ids))
  forget_telemetry(ids)
  redis.call("ZREM", key, unpack(ids))
  if key == QUEUE_KEY[QUEUE_FINISHED] then redis.call("ZREM", K_FINISHED, unpack(ids)) end
  for _, id in ipairs(ids) do removed[#removed + 1] = id end
end

-- Act on the due tasks of one queue, idlest first, at most `budget`; return how many.
-- Every entry read is due, up to the first that is not (a boundary the score bound
-- can let through), except entries that disagree with their record (left by a daemon
-- of the previous layout): those are refiled, not counted, and the queue read again.
local function sweep_queue(key, horizon, rules)
  local done = 0
  while done < budget do
    local page = math.min(PAGE, budget - done)
    local entries = redis.call("ZRANGEBYSCORE", key, "-inf", num(now - horizon), "WITHSCORES",
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
      elseif now - updated_at <= horizon then
        finished_reading = true
        break
      else
        local action = first_action(rules, now - updated_at)
        if action == ACT_REMOVE then
          gone[#gone + 1] = id
        elseif action == ACT_STALE then
          staled[#staled + 1], staled[#staled + 2], staled[#staled + 3] = id, raw, score
        else
          -- Past the horizon (the smallest limit) a rule always applies; an entry left
          -- unread here would be read again forever.
          error("a task past its queue's horizon that no rule acts on")
        end
      end
    end
    if #gone > 0 then drop(key, gone) end
    if #staled > 0 then mark_stale(key, staled) end
    done = done + #gone + #staled / 3
    if #misfiled > 0 then
      refile(misfiled)
    elseif finished_reading then
      return done
    end
  end
  return done
end

for _, queue in ipairs(plan) do
  if budget > 0 then budget = budget - sweep_queue(QUEUE_KEY[queue[1]], queue[2], queue[3]) end
end
local reply = publish(maxlen, records, removed, ARGV[4])
reply[#reply + 1] = budget <= 0 and REPLY_MORE or REPLY_DONE
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
-- ARGV: maxlen, records (JSON array of records with their telemetry and log tail (`tail`, the
-- lines' fragments), oldest update first)
local records, ids, tasks, tails = {}, {}, {}, {}
for i, t in ipairs(cjson.decode(ARGV[2])) do
  records[i] = save(t)
  ids[i], tasks[t.id] = t.id, t
  if #t.tail > 0 then
    tails[#tails + 1] = t.id
    tails[#tails + 1] = table.concat(t.tail, SEPARATOR)
  end
end
for first = 1, #ids, PAGE do
  save_telemetry({unpack(ids, first, math.min(first + PAGE - 1, #ids))}, tasks)
end
for first = 1, #tails, 2 * PAGE do
  redis.call("HSET", K_LOGS, unpack(tails, first, math.min(first + 2 * PAGE - 1, #tails)))
end
-- Every daemon reloads all tasks rather than reading the records from the stream.
redis.call("XADD", K_STREAM, "MAXLEN", "~", ARGV[1], "*", STREAM_ORIGIN, "", STREAM_TASKS, "",
           STREAM_REMOVED, "", STREAM_RESYNC, "1")
return {REPLY_OK, table.concat(records), ""}
"""
