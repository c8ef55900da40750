-- wrk script: the token request of token.lua, and a count of responses by status class (wrk's
-- own summary counts 3xx as success; this counts only 2xx). Run from the repository root.
-- Prints "responses 2xx: N, other: M" after wrk's summary.
dofile("bench/token.lua")

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  ok, other = 0, 0
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    ok = ok + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local total_ok, total_other = 0, 0
  for _, thread in ipairs(threads) do
    total_ok = total_ok + thread:get("ok")
    total_other = total_other + thread:get("other")
  end
  io.write(string.format("responses 2xx: %d, other: %d\n", total_ok, total_other))
end
