-- wrk script: POST /oauth2/token with grant_type=refresh_token, each request presenting a
-- refresh token no request has used yet. Every thread takes its share of a pre-minted pool
-- (BENCH_TOKENS: a file of ghar_ tokens, one per line; BENCH_THREADS: how many threads share
-- it) and puts each successor from a response back into its queue, so the load is a set of
-- concurrent rotating chains, as phones refreshing would be. A refused refresh loses its chain.
local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("index", counter)
  table.insert(threads, thread)
end

function init(args)
  queue = {}
  head, tail = 1, 0
  local total = tonumber(os.getenv("BENCH_THREADS"))
  local n = 0
  for line in io.lines(os.getenv("BENCH_TOKENS")) do
    n = n + 1
    if (n - 1) % total == index - 1 then
      tail = tail + 1
      queue[tail] = line
    end
  end
  client = os.getenv("BENCH_CLIENT_ID")
end

function request()
  local token
  if head <= tail then
    token = queue[head]
    queue[head] = nil
    head = head + 1
  else
    -- The pool ran dry (refused refreshes): an invalid token, counted as non-2xx.
    token = "ghar_exhausted"
  end
  return wrk.format("POST", "/oauth2/token",
    { ["Content-Type"] = "application/x-www-form-urlencoded" },
    "grant_type=refresh_token&client_id=" .. client .. "&refresh_token=" .. token)
end

function response(status, headers, body)
  local successor = string.match(body, '"refresh_token":"(ghar_[%w]+)"')
  if successor then
    tail = tail + 1
    queue[tail] = successor
  end
end
