-- wrk script for openxp's benchmark: every request may spend the next value of a file.
--
-- wrk -tT -s bench/tokens.lua URL -- METHOD PATH BODY [FILE START T]
--   BODY   the request body; "{v}" in it is replaced by the value (may be empty);
--   FILE   one value per line (codes, refresh tokens); omitted: BODY is sent as is;
--   START  how many values earlier runs already spent (0-based line offset);
--   T      wrk's thread count (-t).
-- Thread k sends lines START+k, START+k+T, START+k+2T, ... so no value is
-- sent twice, and done() prints "SPENT <n>": how far the next run must skip.
-- A thread that runs out of values stops and its last request fails; the
-- runner then marks the figure invalid (seed more values; never reuse them).
-- Headers come from wrk's -H options.

local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  method, path, body = args[1], args[2], args[3] or ""
  start = tonumber(args[5] or "0")
  nthreads = tonumber(args[6] or "1")
  sent = 0
  if args[4] and args[4] ~= "" then
    values = {}
    for line in io.lines(args[4]) do
      values[#values + 1] = line
    end
  end
end

function request()
  local text = body
  if values then
    local value = values[start + id + sent * nthreads + 1]
    if value == nil then
      wrk.thread:stop()
      value = "exhausted"
    end
    text = string.gsub(body, "{v}", value)
  end
  sent = sent + 1
  return wrk.format(method, path, nil, text)
end

function done(summary, latency, requests)
  local most = 0
  for _, thread in ipairs(threads) do
    local n = thread:get("sent") or 0
    if n > most then
      most = n
    end
  end
  io.write(string.format("SPENT %d\n", most * #threads))
end
