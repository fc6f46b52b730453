-- wrk script: TASKS tasks that finish continuously: each run is a start, STEPS - 2 updates
-- and a close, then the task starts again. Every task belongs to one of JOBS jobs
-- (meta.job), so the history keeps expectations for them. Environment: TASKS, BATCH (events
-- per request; 1 sends a single object), STEPS, JOBS, START (events sent before: a run of
-- wrk takes up where the previous one stopped).
local common = dofile(debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "wrk_common.lua")
local tasks = tonumber(os.getenv("TASKS") or "1000")
local steps = tonumber(os.getenv("STEPS") or "20")
local jobs = tonumber(os.getenv("JOBS") or "50")
local counter = tonumber(os.getenv("START") or "0")

request = common.request(function()
  counter = counter + 1
  local task = counter % tasks
  local step = math.floor(counter / tasks) % steps
  if step == 0 then
    return string.format('{"task_id":"bench-%d","status":"start","n":0,"total":%d,"desc":"bench",'
                         .. '"meta":{"job":"bench-job-%d"}}', task, steps - 1, task % jobs)
  end
  local status = step == steps - 1 and "close" or "update"
  return string.format('{"task_id":"bench-%d","status":"%s","n":%d}', task, status, step)
end)

done = common.done
