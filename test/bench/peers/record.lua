-- wrk script for `npm run bench -- --peers` (test/bench/peers.ts): records the
-- load's timeline in fixed buckets, per thread, and writes it as JSON in done().
--
--   BG_ORIGIN_US=<µs since the epoch> BG_BUCKET_US=50000 BG_OUT=series.json \
--     wrk -t2 -c64 -d600s --timeout 2s -s record.lua http://127.0.0.1:PORT/
--
-- Bucket b covers [origin + b*width, origin + (b+1)*width), by the wall clock
-- (gettimeofday through LuaJIT's FFI: wrk's Lua has no sub-second clock, and
-- the harness stamps its switches with the same clock). Per bucket:
--   sent       request() calls: a request about to be written (a reconnect after
--              an error writes a new one, so a lost request stays counted here)
--   ok, non2xx responses by status class (non2xx: any status outside 200-299)
--   blue, green, other   responses by their X-Bluegreen-Color header
--   blue_first, blue_last, green_first, green_last
--              µs (from origin) of the first and last response of that colour
--              in the bucket, so a mixed-version window is exact, not 50 ms coarse
-- sent - (ok + non2xx), summed from the start, is the number of requests awaiting
-- an answer: one per busy connection plus every request that never got one.
-- wrk's own summary (socket errors by kind, non-2xx, timeouts) is written too.

local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_usec; } bg_timeval;
int gettimeofday(bg_timeval *tv, void *tz);
]])
local tv = ffi.new("bg_timeval")
local function now_us()
  ffi.C.gettimeofday(tv, nil)
  return tonumber(tv.tv_sec) * 1000000 + tonumber(tv.tv_usec)
end

local origin = tonumber(os.getenv("BG_ORIGIN_US") or "") or now_us()
local width = tonumber(os.getenv("BG_BUCKET_US") or "") or 50000
local floor = math.floor

-- Per-thread state (each wrk thread has its own Lua state); done() reads it with thread:get.
sent, ok, non2xx, blue, green, other = {}, {}, {}, {}, {}, {}
blue_first, blue_last, green_first, green_last = {}, {}, {}, {}

local COUNTS = { "sent", "ok", "non2xx", "blue", "green", "other" }
local FIRSTS = { "blue_first", "green_first" }
local LASTS = { "blue_last", "green_last" }

-- Main state only.
local threads = {}
function setup(thread)
  threads[#threads + 1] = thread
  thread:set("first_thread", #threads == 1)
end

-- wrk calls request() once on the first thread's state before any connection
-- exists, to check what the script sends (script_verify_request in wrk.c);
-- that one is never sent, so it is not counted.
local req, unsent
function init(_)
  req = wrk.format()
  unsent = first_thread and 1 or 0
end

function request()
  if unsent > 0 then
    unsent = unsent - 1
    return req
  end
  local b = floor((now_us() - origin) / width)
  sent[b] = (sent[b] or 0) + 1
  return req
end

function response(status, headers, _)
  local t = now_us() - origin
  local b = floor(t / width)
  if status >= 200 and status < 300 then
    ok[b] = (ok[b] or 0) + 1
  else
    non2xx[b] = (non2xx[b] or 0) + 1
  end
  -- nginx and Go keep the app's spelling; HAProxy's HTTP/1 output lowercases names.
  local color = headers["X-Bluegreen-Color"] or headers["x-bluegreen-color"]
  if color == "blue" then
    blue[b] = (blue[b] or 0) + 1
    if not blue_first[b] then blue_first[b] = t end
    blue_last[b] = t
  elseif color == "green" then
    green[b] = (green[b] or 0) + 1
    if not green_first[b] then green_first[b] = t end
    green_last[b] = t
  else
    other[b] = (other[b] or 0) + 1
  end
end

local function json_array(t, n, missing)
  local parts = {}
  for b = 0, n do
    local v = t[b]
    parts[#parts + 1] = v and string.format("%d", v) or missing
  end
  return "[" .. table.concat(parts, ",") .. "]"
end

function done(summary, latency, _)
  local agg, last = {}, -1
  for _, name in ipairs(COUNTS) do agg[name] = {} end
  for _, name in ipairs(FIRSTS) do agg[name] = {} end
  for _, name in ipairs(LASTS) do agg[name] = {} end
  for _, thread in ipairs(threads) do
    for _, name in ipairs(COUNTS) do
      local into = agg[name]
      for b, v in pairs(thread:get(name)) do
        into[b] = (into[b] or 0) + v
        if b > last then last = b end
      end
    end
    for _, name in ipairs(FIRSTS) do
      local into = agg[name]
      for b, v in pairs(thread:get(name)) do
        if not into[b] or v < into[b] then into[b] = v end
      end
    end
    for _, name in ipairs(LASTS) do
      local into = agg[name]
      for b, v in pairs(thread:get(name)) do
        if not into[b] or v > into[b] then into[b] = v end
      end
    end
  end
  local e = summary.errors
  local out = {
    string.format('"origin_us":%d,"bucket_us":%d,"threads":%d', origin, width, #threads),
    string.format(
      '"summary":{"duration_us":%d,"requests":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d,"status":%d,"p99_us":%d}',
      summary.duration, summary.requests, e.connect, e.read, e.write, e.timeout, e.status,
      latency:percentile(99)
    ),
  }
  for _, name in ipairs(COUNTS) do
    out[#out + 1] = string.format('"%s":%s', name, json_array(agg[name], last, "0"))
  end
  for _, name in ipairs(FIRSTS) do
    out[#out + 1] = string.format('"%s":%s', name, json_array(agg[name], last, "null"))
  end
  for _, name in ipairs(LASTS) do
    out[#out + 1] = string.format('"%s":%s', name, json_array(agg[name], last, "null"))
  end
  local path = os.getenv("BG_OUT") or "wrk-series.json"
  local f = assert(io.open(path, "w"))
  f:write("{" .. table.concat(out, ",\n") .. "}\n")
  f:close()
end
