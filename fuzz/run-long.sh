#!/usr/bin/env bash
# Runs every fuzz target for a long while and prints one Markdown table row per target
# (executions, coverage, corpus, crashes): the record kept in SECURITY.md.
#
#   fuzz/run-long.sh [SECONDS_PER_TARGET] [TARGETS_AT_ONCE]    # defaults: 600, 2
#
# Needs a nightly toolchain and cargo-fuzz. Each target starts from, and grows, its corpus in
# fuzz/corpus/<target> (git-ignored); a crash is kept in fuzz/artifacts/<target>/ and makes the
# script fail after every target has run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SECONDS_PER_TARGET="${1:-600}"
AT_ONCE="${2:-2}"
LOGS="$(mktemp -d)"
trap 'rm -rf "$LOGS"' EXIT

cargo +nightly fuzz build >&2
run_one() {
  local target="$1"
  cargo +nightly fuzz run "$target" -- -max_total_time="$SECONDS_PER_TARGET" \
    -print_final_stats=1 >"$LOGS/$target.log" 2>&1
  echo $? >"$LOGS/$target.rc"
}
for target in $(cargo +nightly fuzz list); do
  while (( $(jobs -rp | wc -l) >= AT_ONCE )); do wait -n || true; done
  echo "running $target for ${SECONDS_PER_TARGET}s" >&2
  run_one "$target" &
done
wait

echo "| target | seconds | executions | exec/s | coverage (edges) | features | corpus | crashes |"
echo "|---|---|---|---|---|---|---|---|"
# One of libFuzzer's final statistics (`stat::NAME: VALUE`) from the log of the target in `log`.
stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -n 1; }
FAILED=()
for target in $(cargo +nightly fuzz list); do
  log="$LOGS/$target.log"
  last="$(grep -E '^#[0-9]+' "$log" | tail -n 1)"
  cov="$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")"
  ft="$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")"
  corp="$(sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' <<<"$last")"
  crashes=0
  if [[ "$(cat "$LOGS/$target.rc")" != 0 ]]; then
    crashes=1
    FAILED+=("$target")
    tail -n 30 "$log" >&2
  fi
  echo "| \`$target\` | $SECONDS_PER_TARGET | $(stat number_of_executed_units) | $(stat average_exec_per_sec) | $cov | $ft | $corp | $crashes |"
done
if (( ${#FAILED[@]} )); then
  echo "targets that crashed: ${FAILED[*]}" >&2
  exit 1
fi
