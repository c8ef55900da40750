#!/usr/bin/env bash
# The service's memory and connection bounds, on the release binary with the embedded defaults
# (the abuse limits and the login backoff switched off, so every request reaches the work the
# bound is about: the worst case).
#
#   bench/bounds.sh [LOGIN_ROUNDS] [IDLE_CONNECTIONS]
#
# 1. Password hashing: 60, then 500 concurrent wrong-password logins (each of the concurrent
#    clients sends LOGIN_ROUNDS logins, default 3, one after the other, against a real user).
#    Prints the answers by status and the server's peak resident memory (VmHWM), which must stay
#    under 200 MiB: `users.argon2_memory_budget_mib` (64 MiB, three hashes at the default cost)
#    bounds the Argon2 memory, and the logins beyond it wait (32) or get 503 with Retry-After.
# 2. Connections: a server with http.header_read_timeout = 5s; IDLE_CONNECTIONS (default 1000)
#    connections, half of them silent and half with half a request header sent. Meanwhile a new
#    client asks for /HealthCheck/live every 0.5 s. Prints when the server closed the held
#    connections (the bound is 5 s; a TCP round trip and the timer's granularity come on top)
#    and the new clients' answers and latencies while they were held.
#
# Needs curl and python3.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
ROUNDS="${1:-3}"
IDLE="${2:-1000}"
source "$ROOT/bench/common.sh"
ulimit -n "$(( IDLE * 2 + 4096 ))" 2>/dev/null || true

start_server() {
  local name="$1"
  PORT="$(free_port)"
  ADDR="127.0.0.1:$PORT"
  "$BIN" --config "$WORK/$name.toml" serve --data-dir "$WORK/data-$name" --listen "$ADDR" >"$WORK/$name.log" 2>&1 &
  SERVER=$!
  until curl -fs -o /dev/null "http://$ADDR/HealthCheck/live"; do
    kill -0 "$SERVER" 2>/dev/null || { cat "$WORK/$name.log" >&2; exit 1; }
    sleep 0.05
  done
}

stop_server() {
  kill "$SERVER" 2>/dev/null || true
  wait "$SERVER" 2>/dev/null || true
  SERVER=""
}

hwm() { awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$SERVER/status"; }
rss() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$SERVER/status"; }

echo "machine: nproc=$(nproc), $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), load average before: $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%MZ)"

# --- 1. password hashing -----------------------------------------------------------------------
cat >"$WORK/hash.toml" <<'TOML'
[log]
level = "warn"

[rate_limit]
enabled = false

[users]
failures_before_backoff = 0
user_failures_before_backoff = 0
source_failures_before_backoff = 0
TOML
for clients in 60 500; do
  rm -rf "$WORK/data-hash"
  start_server hash
  "$BIN" --config "$WORK/hash.toml" --data-dir "$WORK/data-hash" clients add bench-app --public \
    --first-party --grant password --scope jobs:read --audience field-service >/dev/null
  printf 'bench-password-%s\n' "$RANDOM$RANDOM" | "$BIN" --config "$WORK/hash.toml" --data-dir "$WORK/data-hash" users add bench-user >/dev/null
  before="$(rss)"
  result="$(python3 - "$ADDR" "$clients" "$ROUNDS" <<'PY'
import collections, http.client, sys, threading, time
addr, clients, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
host, port = addr.split(":")
body = "grant_type=password&client_id=bench-app&username=bench-user&password=wrong-password"
counts = collections.Counter()
lock = threading.Lock()
start = threading.Barrier(clients)
def client():
    start.wait()
    for _ in range(rounds):
        try:
            conn = http.client.HTTPConnection(host, int(port), timeout=60)
            conn.request("POST", "/oauth2/token", body, {"Content-Type": "application/x-www-form-urlencoded"})
            response = conn.getresponse()
            response.read()
            key = str(response.status)
            if response.status == 503 and response.getheader("Retry-After"):
                key = "503+Retry-After"
            conn.close()
        except Exception as e:
            key = type(e).__name__
        with lock:
            counts[key] += 1
threads = [threading.Thread(target=client) for _ in range(clients)]
began = time.monotonic()
for t in threads: t.start()
for t in threads: t.join()
print(" ".join(f"{k}:{v}" for k, v in sorted(counts.items())), f"in {time.monotonic() - began:.1f} s")
PY
)"
  echo "hashing, $clients concurrent clients x $ROUNDS wrong-password logins: answers $result; RSS before ${before} MiB, peak (VmHWM) $(hwm) MiB (bar: < 200 MiB)"
  stop_server
done

# --- 2. connections ----------------------------------------------------------------------------
cat >"$WORK/conn.toml" <<'TOML'
[log]
level = "warn"

[http]
header_read_timeout = "5s"
TOML
start_server conn
python3 - "$ADDR" "$IDLE" <<'PY'
import selectors, socket, subprocess, sys, threading, time
addr, count = sys.argv[1], int(sys.argv[2])
host, port = addr.split(":")
held, opened = [], {}
for i in range(count):
    s = socket.create_connection((host, int(port)))
    if i % 2:
        s.sendall(b"POST /oauth2/token HTTP/1.1\r\nHost: bench\r\nContent-Type: applic")
    s.setblocking(False)
    held.append(s)
    opened[s] = time.monotonic()
print(f"connections: {count} held ({count // 2} silent, {count - count // 2} half-sent), opened in {time.monotonic() - min(opened.values()):.1f} s")
served, latencies, stop = [], [], threading.Event()
def probe():
    while not stop.is_set():
        began = time.monotonic()
        out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10",
                              f"http://{addr}/HealthCheck/live"], capture_output=True, text=True).stdout
        latencies.append(time.monotonic() - began)
        served.append(out)
        time.sleep(0.5)
prober = threading.Thread(target=probe)
prober.start()
sel = selectors.DefaultSelector()
for s in held:
    sel.register(s, selectors.EVENT_READ)
closed = {}
deadline = time.monotonic() + 60
while len(closed) < count and time.monotonic() < deadline:
    for key, _ in sel.select(timeout=1):
        s = key.fileobj
        try:
            data = s.recv(4096)
        except OSError:
            data = b""
        if not data:
            closed[s] = time.monotonic() - opened[s]
            sel.unregister(s)
            s.close()
stop.set()
prober.join()
after = sorted(closed.values())
print(f"connections: {len(after)} of {count} closed by the server; after {after[0]:.2f} s (first), "
      f"{after[len(after) // 2]:.2f} s (median), {after[-1]:.2f} s (last); bound: 5 s")
ok = sum(1 for s in served if s == "200")
print(f"new clients meanwhile: {ok} of {len(served)} answered 200, latency max {max(latencies) * 1000:.0f} ms, "
      f"median {sorted(latencies)[len(latencies) // 2] * 1000:.0f} ms")
PY
echo "server peak RSS during the connections run: $(hwm) MiB"
stop_server
