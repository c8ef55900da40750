#!/usr/bin/env bash
# Faults under load: HAProxy in front of two release replicas on a private PostgreSQL cluster,
# signing keys in OpenBao, continuous load, and one fault per phase.
#
#   bench/chaos.sh
#
# Starts (all in a temporary directory, all stopped on exit): a PostgreSQL cluster of its own
# (initdb; never the machine's shared server), an OpenBao dev server, two `gha-auth serve`
# replicas (rate limits off: one load client from one address is the whole load) and HAProxy
# (Debian's haproxy; health check GET /HealthCheck every second, retries and redispatch on a
# failed connection). bench/chaos_load.py sends client_credentials token requests and revocation
# feed reads (which need the database) through HAProxy for the whole run. Phases:
#   baseline 10 s; Vault outage 30 s (OpenBao stopped with SIGSTOP); database outage 20 s
#   (pg_ctl stop, then start); kill -9 of one replica (restarted after 5 s); emergency rotation
#   (`gha-auth keys rotate --emergency` while both replicas' JWKS are polled every 20 ms); rolling restart (SIGTERM, start, back UP in HAProxy, one replica after the
#   other); settle 10 s.
# Prints per phase: requests, failures by kind, p99, the slowest 503, the last failure; then the
# emergency rotation's time to reach each replica and `gha-auth audit verify`.
# Needs haproxy, initdb/pg_ctl, OpenBao (.tools/venv/bin/bao or $GHA_AUTH_BAO_BIN), python3 with
# requests, curl.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BAO="${GHA_AUTH_BAO_BIN:-$ROOT/.tools/venv/bin/bao}"
[[ -x "$BAO" ]] || { echo "OpenBao binary not found at $BAO" >&2; exit 1; }
command -v haproxy >/dev/null || { echo "haproxy is needed (apt-get install haproxy)" >&2; exit 1; }
PY="${GHA_AUTH_PYTHON:-$ROOT/.tools/venv/bin/python}"
[[ -x "$PY" ]] || PY=python3
PG_BIN="$(dirname "$(readlink -f "$(command -v initdb || ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")")"
source "$ROOT/bench/common.sh"
declare -A PIDS=()
PG_DIR=""
bench_cleanup() {
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  PIDS=()
  if [[ -n "$PG_DIR" ]]; then pg stop -m immediate >/dev/null 2>&1 || true; rm -rf "$PG_DIR"; PG_DIR=""; fi
}
# Stop the replicas, HAProxy and the cluster before common.sh waits for its children.
trap 'bench_cleanup; bench_exit' EXIT
now() { date +%s.%N; }
log() { echo "[$(date +%T)] $*"; }
die() { echo "chaos: $*" >&2; exit 1; }

# --- PostgreSQL, a cluster of its own -------------------------------------------------------
# Its own directory: WORK is private to this user, and the cluster may run as `postgres`.
PG_DIR="$(mktemp -d)"
RUN_AS=()
if [[ "$(id -u)" == 0 ]]; then chown postgres "$PG_DIR"; RUN_AS=(runuser -u postgres --); fi
pg() { "${RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" "$@"; }
PG_PASSWORD="$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
echo "$PG_PASSWORD" >"$PG_DIR/pwfile"; [[ ${#RUN_AS[@]} -gt 0 ]] && chown postgres "$PG_DIR/pwfile"
"${RUN_AS[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres -A scram-sha-256 --pwfile="$PG_DIR/pwfile" \
  -E UTF8 --locale=C --no-sync >"$WORK/initdb.log" 2>&1 || { cat "$WORK/initdb.log" >&2; die "initdb failed"; }
rm -f "$PG_DIR/pwfile"
PG_PORT="$(free_port)"
printf "listen_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\nport = %s\nfsync = off\n" \
  "$PG_DIR" "$PG_PORT" >>"$PG_DIR/data/postgresql.conf"
pg start -w -l "$PG_DIR/postgres.log" >/dev/null || die "PostgreSQL did not start"
STORE_URL="postgres://postgres:$PG_PASSWORD@127.0.0.1:$PG_PORT/postgres"

# --- OpenBao dev server ---------------------------------------------------------------------
BAO_PORT="$(free_port)"
ROOT_TOKEN="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
BAO_DEV_ROOT_TOKEN_ID="$ROOT_TOKEN" "$BAO" server -dev -dev-listen-address="127.0.0.1:$BAO_PORT" >"$WORK/bao.log" 2>&1 &
BAOPID=$!
until curl -fs -o /dev/null "http://127.0.0.1:$BAO_PORT/v1/sys/health"; do
  kill -0 "$BAOPID" 2>/dev/null || { cat "$WORK/bao.log" >&2; die "OpenBao did not start"; }
  sleep 0.1
done
echo "$ROOT_TOKEN" >"$WORK/bao-token"; chmod 600 "$WORK/bao-token"

# --- two replicas and HAProxy ---------------------------------------------------------------
LB_PORT="$(free_port)"; STATS_SOCK="$WORK/haproxy.sock"
R_PORTS=("$(free_port)" "$(free_port)")
cat >"$WORK/gha-auth.toml" <<TOML
issuer = "http://127.0.0.1:$LB_PORT"
[store]
url = "$STORE_URL"
[keys]
backend = "vault"
master_key_file = "$WORK/master.key"
[vault]
address = "http://127.0.0.1:$BAO_PORT"
token_file = "$WORK/bao-token"
request_timeout = "2s"
[rate_limit]
enabled = false
[log]
level = "warn"
TOML
GHA=("$BIN" --config "$WORK/gha-auth.toml")
start_replica() {
  local i=$1
  "${GHA[@]}" --data-dir "$WORK/replica$i" --listen "127.0.0.1:${R_PORTS[$i]}" serve >>"$WORK/replica$i.log" 2>&1 &
  PIDS[replica$i]=$!
  for _ in $(seq 1 300); do
    curl -fs -o /dev/null "http://127.0.0.1:${R_PORTS[$i]}/HealthCheck/live" && return
    kill -0 "${PIDS[replica$i]}" 2>/dev/null || break
    sleep 0.1
  done
  tail -20 "$WORK/replica$i.log" >&2; die "replica $i did not start"
}
start_replica 0
start_replica 1
cat >"$WORK/haproxy.cfg" <<CFG
global
    stats socket $STATS_SOCK mode 600 level admin
    maxconn 1000
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout check 2s
    retries 3
    option redispatch
    retry-on conn-failure empty-response
frontend fe
    bind 127.0.0.1:$LB_PORT
    default_backend be
backend be
    balance roundrobin
    option httpchk GET /HealthCheck
    default-server inter 1s fall 2 rise 1
    server node1 127.0.0.1:${R_PORTS[0]} check
    server node2 127.0.0.1:${R_PORTS[1]} check
CFG
haproxy -c -q -f "$WORK/haproxy.cfg" || die "haproxy -c refuses the configuration"
haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 &
PIDS[haproxy]=$!
node_up() { echo "show servers state be" | "$PY" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(sys.stdin.read().encode())
data = b""
while chunk := s.recv(65536): data += chunk
for line in data.decode().splitlines():
    f = line.split()
    if len(f) > 5 and f[3] == sys.argv[2]: print("UP" if f[5] == "2" else "DOWN")
' "$STATS_SOCK" "$1"; }
wait_up() { for _ in $(seq 1 100); do [[ "$(node_up "$1")" == UP ]] && return; sleep 0.1; done; die "HAProxy does not see $1 UP"; }
wait_up node1; wait_up node2

SECRET="$("${GHA[@]}" --data-dir "$WORK/replica0" --json clients add chaos-load --grant client_credentials \
  --audience field-service --scope jobs:read | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])')"

# --- load and phases ------------------------------------------------------------------------
: >"$WORK/phases"
"$PY" bench/chaos_load.py load "http://127.0.0.1:$LB_PORT" chaos-load "$SECRET" "$WORK/requests" "$WORK/stop" 8 &
PIDS[load]=$!
PHASE_START=""
phase() { PHASE_START="$(now)"; PHASE_NAME="$1"; log "phase: $1"; }
phase_end() { echo "$PHASE_START $(now) $PHASE_NAME" >>"$WORK/phases"; }

phase "baseline (10 s)"; sleep 10; phase_end

phase "Vault outage (30 s, OpenBao stopped)"
kill -STOP "$BAOPID"; sleep 30; kill -CONT "$BAOPID"; sleep 5; phase_end

phase "database outage (20 s, PostgreSQL stopped)"
pg stop -m fast -w >/dev/null; sleep 20; pg start -w -l "$PG_DIR/postgres.log" >/dev/null; sleep 5; phase_end

phase "kill -9 of replica 1 (restarted after 5 s)"
kill -9 "${PIDS[replica1]}"; wait "${PIDS[replica1]}" 2>/dev/null || true
sleep 5; start_replica 1; wait_up node2; sleep 3; phase_end

phase "emergency rotation"
# Both replicas' JWKS watched in parallel; times count from the new key's activation, which the
# authority stamps before it commits the new ring, so they include the commit and the NOTIFY.
rm -f "$WORK/watch-stop"
"$PY" bench/chaos_load.py watch-jwks "$WORK/jwks-watch" "$WORK/watch-stop" \
  "http://127.0.0.1:${R_PORTS[0]}" "http://127.0.0.1:${R_PORTS[1]}" &
PIDS[watch]=$!
sleep 1
NEW_KID="$("${GHA[@]}" --data-dir "$WORK/replica0" --json keys rotate --emergency | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["kid"])')"
ACTIVATED_AT="$("${GHA[@]}" --data-dir "$WORK/replica0" --json keys list \
  | "$PY" -c 'import json,sys; print(next(k["activates_at"] for k in json.load(sys.stdin) if k["kid"] == sys.argv[1]))' "$NEW_KID")"
sleep 5; touch "$WORK/watch-stop"; wait "${PIDS[watch]}"; unset 'PIDS[watch]'
VISIBLE="$("$PY" bench/chaos_load.py visible "$WORK/jwks-watch" "$NEW_KID" "$ACTIVATED_AT")"
[[ "$VISIBLE" != *never* ]] || die "a replica never published only the new key: $VISIBLE"
phase_end

phase "rolling restart"
for i in 0 1; do
  kill -TERM "${PIDS[replica$i]}"; wait "${PIDS[replica$i]}" || die "replica $i did not stop cleanly"
  start_replica "$i"; wait_up "node$((i + 1))"
done
sleep 3; phase_end

phase "settle (10 s)"; sleep 10; phase_end
touch "$WORK/stop"; wait "${PIDS[load]}"; unset 'PIDS[load]'

echo
"$PY" bench/chaos_load.py report "$WORK/requests" "$WORK/phases"
echo "emergency rotation: only the new key published after: $VISIBLE (from the new key's activation)"
"${GHA[@]}" --data-dir "$WORK/replica0" audit verify
