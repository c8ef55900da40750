-- wrk script: POST /oauth2/token, client_credentials with client_secret_basic.
-- The Authorization header comes from the environment (BENCH_BASIC = base64 of id:secret).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic " .. os.getenv("BENCH_BASIC")
wrk.body = "grant_type=client_credentials"

