-- wrk script for bench/visits: guest `sharedLink(token, visitorId)` GraphQL queries.
--
--   wrk -t2 -c32 -d13s --latency -s bench/visits.lua http://127.0.0.1:PORT/graphql \
--       -- TOKEN SECONDS [VISITORS] [PREFIX]
--
-- TOKEN     the shared link token (last path segment of SharedLink.url)
-- SECONDS   how long to send visits (may be fractional); give wrk's -d a few seconds more
-- VISITORS  size of the visitorId pool the requests rotate over (default 5000)
-- PREFIX    visitorId prefix (default "bench-visitor-")
--
-- Exact counting needs every visit request that the server may have counted to be answered
-- before wrk stops. wrk abandons the requests in flight when its -d timer fires, so this script
-- ends the run itself: after SECONDS each thread sends only a cheap `{__typename}` query that
-- counts no visit, and stops as soon as all of its visit requests have been answered. Requests
-- still in flight at that point are such fillers, so the server's accessCount must equal `ok`.
--
-- done() prints one line:
--   WRK_RESULT ok=N errors=N non200=N gql_errors=N null_views=N socket_errors=N timeouts=N
--              lost=N fillers=N sent=N elapsed_s=F p50_us=N p99_us=N max_us=N covered=BOOL
-- ok           visit responses with HTTP 200, no "errors" key and a non-null sharedLink
-- errors       non200 + gql_errors + null_views + socket_errors (connect, read, write)
-- lost         visit requests sent but never answered (e.g. connection reset): the server
--              may or may not have counted them
-- elapsed_s    from the first visit request to the last visit response, over all threads
-- covered      every thread sent at least VISITORS visits and all were ok, so every visitorId
--              of the pool was counted (uniqueVisitors must then equal VISITORS)
-- Latency percentiles are wrk's own, over all responses (fillers are a few dozen at the end).

local has_ffi, ffi = pcall(require, "ffi")
local now
if has_ffi then
  ffi.cdef [[
    typedef struct { long tv_sec; long tv_nsec; } kf_bench_timespec;
    int clock_gettime(int clk_id, kf_bench_timespec *tp);
  ]]
  local ts = ffi.new("kf_bench_timespec")
  now = function()
    ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC: one clock for all threads of the process
    return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
  end
else
  now = os.time -- whole seconds only; wrk is built with LuaJIT, so this is a fallback
end

local QUERY = "query($t:String!,$v:String){sharedLink(token:$t,visitorId:$v){"
  .. "permission project{name content} organizationName sharedBy canComment canEdit}}"

-- ---------------------------------------------------------------- main state (setup / done)

local threads = {}

function setup(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end

-- ---------------------------------------------------------------- thread states

local requests = {} -- pre-formatted visit requests, one per visitorId
local filler
local seconds
local index = 1
local verify_pending = false
visitors = 0 -- global: done() reads it
local deadline

-- per-thread counters, read by done() through thread:get
ok, non200, gql_errors, null_views, fillers, sent, received = 0, 0, 0, 0, 0, 0, 0
t_first, t_last = 0, 0

local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return string.format("\\u%04x", c:byte())
  end) .. '"'
end

function init(args)
  -- args[0] is the URL; what follows "--" starts at args[1]
  local token = args[1] or os.getenv("VISITS_TOKEN")
  assert(token and token ~= "", "visits.lua: missing shared link token (first argument after --)")
  seconds = tonumber(args[2] or os.getenv("VISITS_SECONDS") or "10")
  visitors = tonumber(args[3] or os.getenv("VISITS_POOL") or "5000")
  local prefix = args[4] or "bench-visitor-"
  assert(visitors and visitors >= 1, "visits.lua: VISITORS must be >= 1")

  local headers = { ["Content-Type"] = "application/json", ["Accept"] = "application/json" }
  for i = 1, visitors do
    local body = '{"query":' .. json_string(QUERY) .. ',"variables":{"t":' .. json_string(token)
      .. ',"v":' .. json_string(prefix .. (i - 1)) .. '}}'
    requests[i] = wrk.format("POST", nil, headers, body)
  end
  filler = wrk.format("POST", nil, headers, '{"query":"{__typename}"}')

  -- threads start at different places in the pool so that they do not move in lock-step
  local tid = thread_id or 0
  index = math.floor(tid * visitors / 2) % visitors + 1
  -- wrk calls request() once on the first thread's state, before the thread runs, only to
  -- check that the request parses; that request is never sent, so it must not be counted.
  verify_pending = (tid == 0)
end

function request()
  if verify_pending then
    verify_pending = false
    return filler
  end
  local t = now()
  if deadline == nil then
    deadline = t + seconds
    t_first = t
  end
  if t >= deadline then
    return filler
  end
  local r = requests[index]
  index = index + 1
  if index > visitors then index = 1 end
  sent = sent + 1
  return r
end

function response(status, headers, body)
  if body and body:find('"__typename"', 1, true) and not body:find('"sharedLink"', 1, true) then
    fillers = fillers + 1
  else
    received = received + 1
    t_last = now()
    if status ~= 200 then
      non200 = non200 + 1
    elseif body == nil or body:find('"errors"', 1, true) then
      gql_errors = gql_errors + 1
    elseif not body:find('"sharedLink"%s*:%s*{') then -- null, or not a view at all
      null_views = null_views + 1
    else
      ok = ok + 1
    end
  end
  if deadline and received >= sent and now() >= deadline then
    wrk.thread:stop()
  end
end

-- ---------------------------------------------------------------- summary (main state)

function done(summary, latency, _requests)
  local total = { ok = 0, non200 = 0, gql_errors = 0, null_views = 0, fillers = 0, sent = 0,
                  received = 0 }
  local first, last = nil, nil
  local covered = #threads > 0
  for _, thread in ipairs(threads) do
    for k, _ in pairs(total) do
      total[k] = total[k] + (thread:get(k) or 0)
    end
    local tf, tl = thread:get("t_first") or 0, thread:get("t_last") or 0
    if tf > 0 and (first == nil or tf < first) then first = tf end
    if tl > 0 and (last == nil or tl > last) then last = tl end
    local pool = thread:get("visitors") or math.huge
    if (thread:get("sent") or 0) < pool or (thread:get("ok") or 0) ~= (thread:get("sent") or 0) then
      covered = false
    end
  end
  local e = summary.errors
  local socket_errors = e.connect + e.read + e.write
  local errors = total.non200 + total.gql_errors + total.null_views + socket_errors
  local elapsed = (first and last and last > first) and (last - first) or 0
  io.write(string.format(
    "WRK_RESULT ok=%d errors=%d non200=%d gql_errors=%d null_views=%d socket_errors=%d "
      .. "timeouts=%d lost=%d fillers=%d sent=%d elapsed_s=%.3f p50_us=%d p99_us=%d max_us=%d "
      .. "covered=%s\n",
    total.ok, errors, total.non200, total.gql_errors, total.null_views, socket_errors,
    e.timeout, total.sent - total.received, total.fillers, total.sent, elapsed,
    latency:percentile(50), latency:percentile(99), latency.max, tostring(covered)))
end
