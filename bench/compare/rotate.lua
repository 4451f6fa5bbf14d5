-- wrk script of bench/compare: POSTs rotating bodies (and bearer tokens) read from a file of
-- "token<TAB>JSON body" lines ("-" = no Authorization header), and counts bad answers:
-- graphql_errors = not HTTP 200 or an "errors" key; null_data = a 200 whose first field under
-- "data" is null (an unknown id or token: the dataset or the token derivation is wrong).
-- usage: wrk ... -s rotate.lua URL -- FILE
local reqs = {}
function init(args)
  for line in io.lines(args[1]) do
    local tok, body = line:match("^([^\t]*)\t(.*)$")
    local h = { ["Content-Type"] = "application/json", ["Accept"] = "application/json" }
    if tok ~= "-" then h["Authorization"] = "Bearer " .. tok end
    reqs[#reqs + 1] = wrk.format("POST", nil, h, body)
  end
  -- Each thread starts at another place in the rotation (tid is set by setup()).
  n = ((tid or 0) * 37) % #reqs
end
function request()
  n = n % #reqs + 1
  return reqs[n]
end
errs = 0
nulls = 0
function response(status, headers, body)
  if status ~= 200 or body:find('"errors"', 1, true) then
    errs = errs + 1
  elseif body:find('^%s*{%s*"data"%s*:%s*{%s*"[^"]*"%s*:%s*null') then
    nulls = nulls + 1
  end
end
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end
function done(summary, latency, requests)
  local e, z = 0, 0
  for _, t in ipairs(threads) do
    e = e + (t:get("errs") or 0)
    z = z + (t:get("nulls") or 0)
  end
  local s = summary.errors
  io.write(string.format(
    "rps=%.0f p50_ms=%.2f p99_ms=%.2f requests=%d graphql_errors=%d null_data=%d non2xx=%d socket_errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.requests, e, z, s.status, s.connect + s.read + s.write + s.timeout))
end
