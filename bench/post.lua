-- wrk script: POST progress events over keep-alive, cycling through TASKS task ids.
-- Environment: TASKS (distinct task ids), BATCH (events per request; 1 sends a single object),
-- DELAY_MS (optional pause before each request on a connection, to offer a steady load).
local common = dofile(debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "wrk_common.lua")
local tasks = tonumber(os.getenv("TASKS") or "1000")
local delay_ms = tonumber(os.getenv("DELAY_MS") or "0")
local counter = 0

request = common.request(function()
  counter = counter + 1
  return string.format('{"task_id":"bench-%d","n":%d,"total":1000000,"desc":"bench"}',
                       counter % tasks, counter)
end)

if delay_ms > 0 then
  delay = function() return delay_ms end
end

done = common.done
