# Shared by the bench scripts that start `gha-auth serve`; sourced, not run. Expects ROOT.
#
# After sourcing: BIN is the release `gha-auth` (or $BENCH_BIN), WORK a private temporary
# directory, and SERVER / BAOPID (set them when starting those processes) are killed on exit,
# before WORK is removed and before `bench_cleanup`, which a script may define for its own
# leftovers. Every GHA_AUTH_*
# variable is unset except those named in BENCH_KEEP_ENV, so the caller's environment cannot
# change what is measured.

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# BENCH_BIN measures another build of `gha-auth` (an earlier commit's, say) with the same script.
if [[ -n "${BENCH_BIN:-}" ]]; then
  BIN="$BENCH_BIN"
else
  cargo build --release -q -p gha-auth-server --bin gha-auth
  BIN="$ROOT/target/release/gha-auth"
fi
WORK="$(mktemp -d)"
chmod 700 "$WORK"
SERVER=""
BAOPID=""
bench_cleanup() { :; }
bench_exit() {
  [[ -n "$SERVER" ]] && kill "$SERVER" 2>/dev/null || true
  [[ -n "$BAOPID" ]] && kill "$BAOPID" 2>/dev/null || true
  wait 2>/dev/null || true
  bench_cleanup
  rm -rf "$WORK"
}
trap bench_exit EXIT
for key in $(env | awk -F= '/^GHA_AUTH_/ {print $1}'); do
  [[ " ${BENCH_KEEP_ENV:-} " == *" $key "* ]] || unset "$key"
done
