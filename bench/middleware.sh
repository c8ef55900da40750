#!/usr/bin/env bash
# HTTP load comparison: the same handler unprotected and behind the gha-auth-middleware layer,
# served by one process, measured one after the other in the same run with the same settings.
#
#   bench/middleware.sh [DURATION_SECONDS] [CONNECTIONS]
#
# Needs wrk (Debian package `wrk`). Prints requests/s for both routes and their ratio.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DURATION="${1:-10}"
CONNECTIONS="${2:-32}"
ADDR="127.0.0.1:8781"
command -v wrk >/dev/null || { echo "bench/middleware.sh: wrk is needed (apt-get install wrk)" >&2; exit 1; }

cargo build --release -q -p gha-auth-middleware --example bench_server
OUT="$(mktemp)"
"$ROOT/target/release/examples/bench_server" "$ADDR" >"$OUT" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; rm -f "$OUT"' EXIT
for _ in $(seq 50); do [[ -s "$OUT" ]] && break; sleep 0.1; done
TOKEN="$(head -n 1 "$OUT")"

run() { # route, extra wrk args…
  local route="$1"; shift
  wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency "$@" "http://$ADDR$route"
}
# Warm up both paths (the protected one verifies the token once, then hits the cache).
wrk -t1 -c4 -d2s -H "Authorization: Bearer $TOKEN" "http://$ADDR/protected" >/dev/null
wrk -t1 -c4 -d2s -H "Authorization: Bearer $TOKEN" "http://$ADDR/open" >/dev/null

# The same request bytes to both routes, so only the layer's work differs.
OPEN="$(run /open -H "Authorization: Bearer $TOKEN")"
PROTECTED="$(run /protected -H "Authorization: Bearer $TOKEN")"
# A request without a token must be refused, or the comparison means nothing.
STATUS="$(curl -s -o /dev/null -w '%{http_code}' "http://$ADDR/protected")"
[[ "$STATUS" == 401 ]] || { echo "protected route answered $STATUS without a token" >&2; exit 1; }

rps() { awk '/Requests\/sec/ {print $2}' <<<"$1"; }
p99() { awk '$1 == "99%" {print $2}' <<<"$1"; }
non2xx() { awk '/Non-2xx/ {n=$5} END {print n+0}' <<<"$1"; }
printf 'unprotected: %s req/s, p99 %s\n' "$(rps "$OPEN")" "$(p99 "$OPEN")"
printf 'protected:   %s req/s, p99 %s, non-2xx %s\n' "$(rps "$PROTECTED")" "$(p99 "$PROTECTED")" "$(non2xx "$PROTECTED")"
awk -v a="$(rps "$PROTECTED")" -v b="$(rps "$OPEN")" 'BEGIN { printf "ratio protected/unprotected: %.3f (bar: >= 0.85)\n", a / b }'
