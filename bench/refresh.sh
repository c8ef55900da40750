#!/usr/bin/env bash
# Refresh-grant throughput on SQLite and on PostgreSQL, and the password grant (Argon2id).
#
#   bench/refresh.sh [DURATION_SECONDS] [CONNECTIONS] [POOL]
#   BACKENDS="sqlite postgres" (default: both)   PASSWORD=0 (skip the password grant)
#
# For each store: builds `gha-auth` (release), starts `gha-auth serve` (rate limits off: one
# client from one address is the whole load), creates a user and a first-party public client
# with the CLI, pre-mints POOL refresh-token families with the password grant, then loads
# POST /oauth2/token grant_type=refresh_token with wrk (bench/refresh.lua): every request
# presents a never-used token and the successor from its response feeds the next one, so each
# request is a full rotation (the conditional UPDATE, the successor INSERT, the user lookup and a
# signed access token). Then the password grant with the configured Argon2id cost.
# PostgreSQL: a fresh database on $GHA_AUTH_TEST_PG_URL (default postgres://postgres@127.0.0.1:5432/postgres).
#
# Needs wrk, curl and (for PostgreSQL) psql.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DURATION="${1:-10}"
CONNECTIONS="${2:-32}"
POOL="${3:-256}"
THREADS=2
PG_ADMIN="${GHA_AUTH_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 1; }

BENCH_KEEP_ENV="GHA_AUTH_TEST_PG_URL GHA_AUTH_STORE_MAX_CONNECTIONS"
source "$ROOT/bench/common.sh"
DB=""
bench_cleanup() {
  [[ -n "$DB" ]] && psql -q "$PG_ADMIN" -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true
}
export GHA_AUTH_RATE_LIMIT_ENABLED=false GHA_AUTH_LOG_LEVEL=warn

rps() { awk '/Requests\/sec/ {print $2}' <<<"$1"; }
# CPU seconds (user + system) the server has used so far.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$SERVER/stat"; }
# Server CPU per request in µs: cpu_before, cpu_after, wrk output.
cpu_per_request() {
  awk -v a="$1" -v b="$2" -v n="$(awk '/requests in/ {print $1}' <<<"$3")" 'BEGIN { printf "%.0f", (b - a) * 1e6 / n }'
}
pct() { awk -v p="$2" '$1 == p {print $2}' <<<"$1"; }
non2xx() { awk '/Non-2xx/ {n=$5} END {print n+0}' <<<"$1"; }

run_backend() {
  local name="$1" url="$2"
  local data="$WORK/$name" port addr
  port="$(free_port)"; addr="127.0.0.1:$port"
  local cfg=(--data-dir "$data")
  [[ -n "$url" ]] && export GHA_AUTH_STORE_URL="$url" || unset GHA_AUTH_STORE_URL
  "$BIN" "${cfg[@]}" serve --listen "$addr" >"$WORK/$name.log" 2>&1 &
  SERVER=$!
  until curl -fs -o /dev/null "http://$addr/HealthCheck"; do
    kill -0 "$SERVER" 2>/dev/null || { cat "$WORK/$name.log" >&2; exit 1; }
    sleep 0.05
  done
  "$BIN" "${cfg[@]}" clients add bench-app --public --first-party --grant password \
    --grant refresh_token --scope jobs:read --audience field-service >/dev/null
  local password="bench-password-$RANDOM-$RANDOM"
  printf '%s\n' "$password" | "$BIN" "${cfg[@]}" users add bench-user >/dev/null
  local login="grant_type=password&client_id=bench-app&username=bench-user&password=$password"
  : >"$WORK/$name.tokens"
  for _ in $(seq "$POOL"); do
    curl -fs -d "$login" "http://$addr/oauth2/token" \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["refresh_token"])' >>"$WORK/$name.tokens"
  done
  [[ "$(wc -l <"$WORK/$name.tokens")" == "$POOL" ]] || { echo "pre-minting failed" >&2; exit 1; }
  export BENCH_TOKENS="$WORK/$name.tokens" BENCH_THREADS=$THREADS BENCH_CLIENT_ID=bench-app
  local out before
  before="$(cpu)"
  out="$(wrk -t$THREADS -c"$CONNECTIONS" -d"${DURATION}s" --latency -s bench/refresh.lua "http://$addr/oauth2/token")"
  printf '%s refresh_token: %s refreshes/s, p50 %s, p99 %s, non-2xx %s, server CPU %s µs/request (bar: >= 3000/s)\n' \
    "$name" "$(rps "$out")" "$(pct "$out" 50%)" "$(pct "$out" 99%)" "$(non2xx "$out")" \
    "$(cpu_per_request "$before" "$(cpu)" "$out")"
  export BENCH_USER=bench-user BENCH_PASSWORD="$password"
  if [[ "${PASSWORD:-1}" == 1 ]]; then
    out="$(wrk -t$THREADS -c8 -d"${DURATION}s" --latency -s bench/password.lua "http://$addr/oauth2/token")"
    printf '%s password: %s logins/s, p50 %s, p99 %s, non-2xx %s\n' \
      "$name" "$(rps "$out")" "$(pct "$out" 50%)" "$(pct "$out" 99%)" "$(non2xx "$out")"
  fi
  kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=""
}

echo "machine: nproc=$(nproc), $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%MZ)"
echo "settings: wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, keep-alive, $POOL refresh-token chains"
BACKENDS="${BACKENDS:-sqlite postgres}"
if [[ " $BACKENDS " == *" sqlite "* ]]; then run_backend sqlite ""; fi
[[ " $BACKENDS " == *" postgres "* ]] || exit 0
if command -v psql >/dev/null && psql -q "$PG_ADMIN" -c 'SELECT 1' >/dev/null 2>&1; then
  DB="gha_bench_$$"
  psql -q "$PG_ADMIN" -c "CREATE DATABASE $DB" >/dev/null
  run_backend postgres "${PG_ADMIN%/*}/$DB"
else
  echo "postgres: skipped (no server at $PG_ADMIN)"
fi
