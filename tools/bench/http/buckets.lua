-- wrk script for tools/bench_http: counts responses per 100 ms slice of wall-clock time in
-- every thread, and prints the merged series from done(). Each line:
--   BUCKET <slice start, ms since the epoch> <responses> <non-2xx/3xx responses>
-- Slices are CLOCK_REALTIME based so the driver can line them up with the SIGHUPs it sent
-- (bash's $EPOCHREALTIME). Responses that never arrive (socket errors) are not in any slice;
-- wrk's own summary counts those. It also counts responses per serving pid (the "pid" field both
-- servers put in their JSON body) and whole second, to show how the load is spread over the
-- workers after the reloads:
--   PID <second, since the epoch> <pid> <responses>
local ffi = require("ffi")
ffi.cdef[[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local SLICE_MS = 100

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  ok = {}     -- slice -> responses
  bad = {}    -- slice -> non-2xx/3xx responses
  bypid = {}  -- "second pid" -> responses
end

function response(status, headers, body)
  ffi.C.clock_gettime(0, ts)  -- CLOCK_REALTIME
  local slice = tonumber(ts.tv_sec) * 10 + math.floor(tonumber(ts.tv_nsec) / 100000000)
  ok[slice] = (ok[slice] or 0) + 1
  if status < 200 or status > 399 then
    bad[slice] = (bad[slice] or 0) + 1
  end
  local pid = body and string.match(body, '"pid":(%d+)')
  if pid then
    local key = tostring(tonumber(ts.tv_sec)) .. " " .. pid
    bypid[key] = (bypid[key] or 0) + 1
  end
end

function done(summary, latency, requests)
  local total, totalbad, totalpid = {}, {}, {}
  for _, thread in ipairs(threads) do
    local p = thread:get("bypid") or {}
    for k, v in pairs(p) do totalpid[k] = (totalpid[k] or 0) + v end
    local t = thread:get("ok") or {}
    for k, v in pairs(t) do total[k] = (total[k] or 0) + v end
    local b = thread:get("bad") or {}
    for k, v in pairs(b) do totalbad[k] = (totalbad[k] or 0) + v end
  end
  local keys = {}
  for k in pairs(total) do table.insert(keys, k) end
  table.sort(keys)
  for _, k in ipairs(keys) do
    io.write(string.format("BUCKET %d %d %d\n", k * SLICE_MS, total[k], totalbad[k] or 0))
  end
  for k, v in pairs(totalpid) do
    io.write(string.format("PID %s %d\n", k, v))
  end
end
