#!/usr/bin/env bash
# HTTP load comparison: the same handler unprotected and behind the gha-auth-middleware layer,
# served by one process, measured in the same run with the same settings.
#
#   bench/middleware.sh [DURATION_SECONDS] [CONNECTIONS] [ROUNDS]
#
# Each round measures both routes back to back, alternating which goes first, so drift in the
# machine's speed (a shared VM's neighbours) hits both alike; the figure is the median of the
# rounds' ratios. PIN=1 puts the server on CPU 0 and wrk (one thread) on CPU 1.
#
# Needs wrk (Debian package `wrk`). Prints requests/s for both routes and their ratio.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DURATION="${1:-10}"
CONNECTIONS="${2:-32}"
ROUNDS="${3:-1}"
ADDR="127.0.0.1:8781"
command -v wrk >/dev/null || { echo "bench/middleware.sh: wrk is needed (apt-get install wrk)" >&2; exit 1; }

cargo build --release -q -p gha-auth-middleware --example bench_server
OUT="$(mktemp)"
SERVER_PIN=(); WRK_PIN=(); THREADS=2
if [[ "${PIN:-0}" == 1 ]]; then SERVER_PIN=(taskset -c 0); WRK_PIN=(taskset -c 1); THREADS=1; fi
"${SERVER_PIN[@]}" "$ROOT/target/release/examples/bench_server" "$ADDR" >"$OUT" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; rm -f "$OUT"' EXIT
for _ in $(seq 50); do [[ -s "$OUT" ]] && break; sleep 0.1; done
TOKEN="$(head -n 1 "$OUT")"

run() { # route, extra wrk args…
  local route="$1"; shift
  "${WRK_PIN[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "$@" "http://$ADDR$route"
}
# Warm up both paths (the protected one verifies the token once, then hits the cache).
wrk -t1 -c4 -d2s -H "Authorization: Bearer $TOKEN" "http://$ADDR/protected" >/dev/null
wrk -t1 -c4 -d2s -H "Authorization: Bearer $TOKEN" "http://$ADDR/open" >/dev/null

rps() { awk '/Requests\/sec/ {print $2}' <<<"$1"; }
p99() { awk '$1 == "99%" {print $2}' <<<"$1"; }
non2xx() { awk '/Non-2xx/ {n=$5} END {print n+0}' <<<"$1"; }

# The same request bytes to both routes, so only the layer's work differs.
RATIOS=()
for round in $(seq "$ROUNDS"); do
  if (( round % 2 == 1 )); then
    OPEN="$(run /open -H "Authorization: Bearer $TOKEN")"
    PROTECTED="$(run /protected -H "Authorization: Bearer $TOKEN")"
  else
    PROTECTED="$(run /protected -H "Authorization: Bearer $TOKEN")"
    OPEN="$(run /open -H "Authorization: Bearer $TOKEN")"
  fi
  [[ "$(non2xx "$PROTECTED")" == 0 ]] || { echo "protected route refused requests" >&2; exit 1; }
  ratio="$(awk -v a="$(rps "$PROTECTED")" -v b="$(rps "$OPEN")" 'BEGIN { printf "%.3f", a / b }')"
  RATIOS+=("$ratio")
  printf 'round %s: unprotected %s req/s (p99 %s), protected %s req/s (p99 %s), ratio %s\n' \
    "$round" "$(rps "$OPEN")" "$(p99 "$OPEN")" "$(rps "$PROTECTED")" "$(p99 "$PROTECTED")" "$ratio"
done
# A request without a token must be refused, or the comparison means nothing.
STATUS="$(curl -s -o /dev/null -w '%{http_code}' "http://$ADDR/protected")"
[[ "$STATUS" == 401 ]] || { echo "protected route answered $STATUS without a token" >&2; exit 1; }
printf '%s\n' "${RATIOS[@]}" | sort -n | awk '{ r[NR] = $1 } END {
  m = (NR % 2) ? r[(NR + 1) / 2] : (r[NR / 2] + r[NR / 2 + 1]) / 2
  printf "median ratio protected/unprotected over %d rounds: %.3f (min %.3f, max %.3f; bar: >= 0.85)\n", NR, m, r[1], r[NR] }'
