-- What the wrk scripts of bench/ share: requests of BATCH events (one object when 1) made by an
-- event function, and the summary line bench/harness.py reads. Loaded with dofile.
local common = {}

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

function common.request(event)
  local batch = tonumber(os.getenv("BATCH") or "1")
  return function()
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
end

function common.done(summary, latency, requests)
  io.write(string.format("BENCH requests=%d errors=%d non2xx=%d seconds=%.3f p50_ms=%.3f p99_ms=%.3f\n",
    summary.requests, summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout, summary.errors.status, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end

return common
