-- wrk script: POST progress events over keep-alive, cycling through TASKS task ids.
-- Environment: TASKS (distinct task ids), BATCH (events per request; 1 sends a single object),
-- DELAY_MS (optional pause before each request on a connection, to offer a steady load),
-- SHAPE ("telemetry": SPEC 16's "every feature on" events, 4 metrics in each and one
-- 80-character log line in one of ten; otherwise plain events).
local tasks = tonumber(os.getenv("TASKS") or "1000")
local batch = tonumber(os.getenv("BATCH") or "1")
local delay_ms = tonumber(os.getenv("DELAY_MS") or "0")
local telemetry = os.getenv("SHAPE") == "telemetry"
local counter = 0
local line = string.rep("x", 62)

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

local function event()
  counter = counter + 1
  if not telemetry then
    return string.format('{"task_id":"bench-%d","n":%d,"total":1000000,"desc":"bench"}',
                         counter % tasks, counter)
  end
  local log = ""
  if counter % 10 == 0 then
    log = string.format(',"log":"step %08d loss %.4f %s"', counter, 1 / counter, line)
  end
  return string.format('{"task_id":"bench-%d","n":%d,"total":1000000,"desc":"bench",'
                       .. '"metrics":{"loss":%.6f,"accuracy":%.4f,"lr":0.001,"epoch":%d}%s}',
                       counter % tasks, counter, 1 / counter, (counter % 1000) / 1000,
                       math.floor(counter / 1000), log)
end

request = function()
  local body
  if batch == 1 then
    body = event()
  else
    local parts = {}
    for i = 1, batch do parts[i] = event() end
    body = "[" .. table.concat(parts, ",") .. "]"
  end
  return wrk.format(nil, nil, nil, body)
end

if delay_ms > 0 then
  delay = function() return delay_ms end
end

done = function(summary, latency, requests)
  io.write(string.format("BENCH requests=%d errors=%d non2xx=%d seconds=%.3f p50_ms=%.3f p99_ms=%.3f\n",
    summary.requests, summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout, summary.errors.status, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
