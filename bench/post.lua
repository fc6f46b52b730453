-- wrk script: POST progress events over keep-alive, cycling through TASKS task ids.
-- Environment: TASKS (distinct task ids), BATCH (events per request; 1 sends a single object),
-- DELAY_MS (optional pause before each request on a connection, to offer a steady load).
local tasks = tonumber(os.getenv("TASKS") or "1000")
local batch = tonumber(os.getenv("BATCH") or "1")
local delay_ms = tonumber(os.getenv("DELAY_MS") or "0")
local counter = 0

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

local function event()
  counter = counter + 1
  return string.format('{"task_id":"bench-%d","n":%d,"total":1000000,"desc":"bench"}',
                       counter % tasks, counter)
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
