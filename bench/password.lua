-- wrk script: POST /oauth2/token with grant_type=password (public first-party client), the
-- same user every time: measures the Argon2id verification the grant costs.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.body = "grant_type=password&client_id=" .. os.getenv("BENCH_CLIENT_ID") ..
  "&username=" .. os.getenv("BENCH_USER") .. "&password=" .. os.getenv("BENCH_PASSWORD")
