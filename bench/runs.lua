-- wrk script: TASKS tasks that finish continuously: each run is a start, STEPS - 2 updates
-- and a close, then the task starts again. Every task belongs to one of JOBS jobs
-- (meta.job), so the history keeps expectations for them. Environment: TASKS, BATCH (events
-- per request; 1 sends a single object), STEPS, JOBS, START (events sent before: a run of
-- wrk takes up where the previous one stopped).
local tasks = tonumber(os.getenv("TASKS") or "1000")
local batch = tonumber(os.getenv("BATCH") or "1")
local steps = tonumber(os.getenv("STEPS") or "20")
local jobs = tonumber(os.getenv("JOBS") or "50")
local counter = tonumber(os.getenv("START") or "0")

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

local function event()
  counter = counter + 1
  local task = counter % tasks
  local step = math.floor(counter / tasks) % steps
  if step == 0 then
    return string.format('{"task_id":"bench-%d","status":"start","n":0,"total":%d,"desc":"bench",'
                         .. '"meta":{"job":"bench-job-%d"}}', task, steps - 1, task % jobs)
  end
  local status = step == steps - 1 and "close" or "update"
  return string.format('{"task_id":"bench-%d","status":"%s","n":%d}', task, status, step)
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

done = function(summary, latency, requests)
  io.write(string.format("BENCH requests=%d errors=%d non2xx=%d seconds=%.3f p50_ms=%.3f p99_ms=%.3f\n",
    summary.requests, summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout, summary.errors.status, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
