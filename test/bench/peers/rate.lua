-- wrk script for the fixed-rate runs of `npm run bench -- --peers` (test/bench/peers.ts):
-- wrk sends as fast as it is answered, and wrk2 is not in Debian, so this paces it.
--
--   BG_RATE=5000 BG_THREADS=2 wrk -t2 -c64 -d10s -s rate.lua http://127.0.0.1:PORT/
--
-- Each thread keeps its own timeline of send slots, BG_RATE / BG_THREADS per second, and
-- wrk's delay() holds each connection's next request until the thread's next free slot: the
-- thread's sends follow the timeline whichever of its connections is ready, so the rate is
-- kept while answers keep up. A timeline that falls more than 100 ms behind (the server
-- answers slower than the rate) restarts from now rather than bursting to catch up.
-- wrk's delay is in whole ms; the slots themselves are exact (µs), so rounding never adds up.

local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_usec; } bg_rate_timeval;
int gettimeofday(bg_rate_timeval *tv, void *tz);
]])
local tv = ffi.new("bg_rate_timeval")
local function now_us()
  ffi.C.gettimeofday(tv, nil)
  return tonumber(tv.tv_sec) * 1000000 + tonumber(tv.tv_usec)
end

local rate = tonumber(os.getenv("BG_RATE") or "")
local threads = tonumber(os.getenv("BG_THREADS") or "") or 2
assert(rate and rate > 0, "BG_RATE (requests per second in all) is required")
local interval_us = 1000000 * threads / rate
local next_us

function init(_)
  next_us = now_us()
end

function delay()
  local now = now_us()
  local slot = next_us
  if slot < now - 100000 then slot = now end
  next_us = slot + interval_us
  if slot <= now then return 0 end
  return math.floor((slot - now) / 1000)
end
