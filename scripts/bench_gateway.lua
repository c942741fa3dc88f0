-- wrk script for scripts/bench-gateway: each thread walks its own file of presigned Binance
-- order bodies (BENCH_REQS.<thread>, one per line), so no request is sent twice (the gateway
-- refuses replays). Lines are read as requests go out rather than loaded in init(): wrk starts
-- each thread as soon as its init() returns, so a slow init would let the first thread run
-- before the clock starts. Prints one tab-separated line at the end for the shell script.

local next_id = 1
local threads = {}

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  exhausted = 0
  local prefix = os.getenv("BENCH_REQS") or ""
  if prefix == "" then
    -- No presigned requests: an unsigned GET of the URL's path (the simulator's ping).
    ping = wrk.format("GET")
    return
  end
  file = assert(io.open(prefix .. "." .. id, "r"))
  local host = wrk.headers["Host"] or (wrk.host .. ":" .. wrk.port)
  head = "POST /api/v3/order HTTP/1.1\r\nHost: " .. host
    .. "\r\nX-MBX-APIKEY: " .. os.getenv("BENCH_API_KEY")
    .. "\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: "
  last = nil
end

function request()
  if ping then
    return ping
  end
  local body = file:read("*l")
  if body == nil then
    -- Out of presigned requests: resend the last one (a replay, which the gateway refuses).
    -- Counted and reported; the shell script says to raise MAX_RPS.
    exhausted = exhausted + 1
    body = last
  end
  last = body
  return head .. #body .. "\r\n\r\n" .. body
end

function done(summary, latency, requests)
  local exh = 0
  for _, t in ipairs(threads) do
    exh = exh + t:get("exhausted")
  end
  local e = summary.errors
  io.write(string.format("BENCH\t%d\t%d\t%d\t%d\t%d\t%d\n",
    summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    e.status + e.connect + e.read + e.write + e.timeout, exh))
end
