#!/usr/bin/env bash
# Memory over a long run with nobody scraping /metrics: the release `gha-auth serve` on embedded
# defaults (rate limits off: one load client from one address is the whole load), loaded with
# client_credentials token requests by wrk in rounds until REQUESTS 2xx answers were counted.
#
#   bench/rss.sh [REQUESTS] [ROUND_SECONDS] [CONNECTIONS]     # defaults: 1000000 15 16
#
# The first round is the warm-up (allocator arenas, caches, connection buffers); the growth is
# measured from the resident memory after it to the resident memory after the last round, each
# read from /proc/<pid>/status after a second of idleness. Prints one line per round and the
# growth; the bar is less than 5 MB over 1 M requests. /metrics is never requested.
#
# Needs wrk and curl.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
REQUESTS="${1:-1000000}"
ROUND="${2:-15}"
CONNECTIONS="${3:-16}"
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 1; }
source "$ROOT/bench/common.sh"
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$SERVER/status"; }

echo "machine: nproc=$(nproc), $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), load average before: $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%MZ)"
PORT="$(free_port)"
ADDR="127.0.0.1:$PORT"
export GHA_AUTH_RATE_LIMIT_ENABLED=false GHA_AUTH_LOG_LEVEL=warn
"$BIN" serve --data-dir "$WORK/data" --listen "$ADDR" >"$WORK/server.log" 2>&1 &
SERVER=$!
until curl -fs -o /dev/null "http://$ADDR/HealthCheck"; do
  kill -0 "$SERVER" 2>/dev/null || { cat "$WORK/server.log" >&2; exit 1; }
  sleep 0.05
done
SECRET="$("$BIN" --data-dir "$WORK/data" clients add rss-svc --grant client_credentials \
  --scope orders:read --audience mfs.api | awk '/^client_secret: / {print $2}')"
[[ "$SECRET" == ghac_* ]] || { echo "no client secret" >&2; exit 1; }
export BENCH_BASIC="$(printf '%s' "rss-svc:$SECRET" | base64 -w0)"
sleep 1
echo "idle after start: $(( $(rss_kb) / 1024 )) MB"

round() {
  local out ok other
  out="$(wrk -t2 -c"$CONNECTIONS" -d"${ROUND}s" -s bench/token-counted.lua "http://$ADDR/oauth2/token")"
  read -r ok other < <(awk '/^responses 2xx:/ {gsub(",", ""); print $3, $5}' <<<"$out")
  [[ "$other" == 0 ]] || { echo "$other answers were not 2xx" >&2; echo "$out" >&2; exit 1; }
  TOTAL=$(( TOTAL + ok ))
  sleep 1
}

TOTAL=0
round
WARM_KB="$(rss_kb)"; WARM_TOTAL=$TOTAL
printf "%-8s %12s %10s\n" round "2xx so far" "RSS"
printf "%-8s %12d %7.1f MB  (warm-up, the baseline)\n" 1 "$TOTAL" "$(awk -v k="$WARM_KB" 'BEGIN {print k / 1024}')"
n=1
while (( TOTAL - WARM_TOTAL < REQUESTS )); do
  round; n=$(( n + 1 ))
  printf "%-8s %12d %7.1f MB\n" "$n" "$TOTAL" "$(awk -v k="$(rss_kb)" 'BEGIN {print k / 1024}')"
done
END_KB="$(rss_kb)"
awk -v a="$WARM_KB" -v b="$END_KB" -v n="$(( TOTAL - WARM_TOTAL ))" \
  'BEGIN {printf "growth after warm-up: %+.2f MB over %d requests (bar: < 5 MB over 1 M)\n", (b - a) / 1024, n}'
