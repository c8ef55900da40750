#!/usr/bin/env bash
# Schemathesis against /openapi.json of the release `gha-auth serve` on embedded defaults (rate
# limits off, so a 429 cannot hide an answer), every check, each group of operations with the
# credentials it documents, so generated requests reach the handlers instead of stopping at 401:
#   /admin/v1/*                  a client token for gha-auth-admin with every admin:<area> scope
#                                (the emergency rotation and client disabling last: they may
#                                invalidate that token)
#   /oauth2/*                    client_secret_basic of a client_credentials client
#   /v1/secrets, /v1/database    a client token for gha-auth-broker
#   /v1/link-keys                a client token for gha-auth-link-keys
#   everything else              no credentials (discovery, health, metrics, sessions)
#
#   bench/schemathesis.sh [SECONDS_PER_GROUP]        # default 60
#
# Installs schemathesis (pinned) into .tools/schemathesis. Exits non-zero when a group reports a
# failure. The known, accepted differences are listed in docs/BENCHMARKS.md ("Schemathesis").
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SECONDS_PER_GROUP="${1:-60}"
SCHEMATHESIS_VERSION="4.32.5"
VENV="$ROOT/.tools/schemathesis"
if [[ ! -x "$VENV/bin/st" ]]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
source "$ROOT/bench/common.sh"

PORT="$(free_port)"
BASE="http://127.0.0.1:$PORT"
# Sessions on, so the /session/* checks (Origin, X-GHA-CSRF) are tested, not a 404.
export GHA_AUTH_RATE_LIMIT_ENABLED=false GHA_AUTH_LOG_LEVEL=warn \
  GHA_AUTH_SESSION_CLIENT_ID=st-portal GHA_AUTH_SESSION_ALLOWED_ORIGINS=https://portal.example
"$BIN" serve --data-dir "$WORK/data" --listen "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 &
SERVER=$!
until curl -fs -o /dev/null "$BASE/HealthCheck"; do
  kill -0 "$SERVER" 2>/dev/null || { cat "$WORK/server.log" >&2; exit 1; }
  sleep 0.05
done

client() {
  local id="$1"; shift
  "$BIN" --data-dir "$WORK/data" --json clients add "$id" --grant client_credentials "$@" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])'
}
token() {
  curl -s -u "$1:$2" -d grant_type=client_credentials "$BASE/oauth2/token" \
    | python3 -c 'import json,sys; b=json.load(sys.stdin); print(b.get("access_token") or sys.exit(f"token for '"$1"': {b}"))'
}
OAUTH_SECRET="$(client st-oauth --audience field-service --scope jobs:read)"
BROKER_SECRET="$(client st-broker --audience gha-auth-broker --scope secrets:read)"
LINK_SECRET="$(client st-link --audience gha-auth-link-keys --scope link-keys:read)"

"$BIN" --data-dir "$WORK/data" clients add st-portal --public --first-party --grant password \
  --grant refresh_token --audience field-service >/dev/null

BROKER_TOKEN="$(token st-broker "$BROKER_SECRET")"
LINK_TOKEN="$(token st-link "$LINK_SECRET")"
# A token of a new admin client, checked before it is used. Each admin group gets its own: the
# group before may have rotated that client's secret (schemathesis reads client ids from
# GET /admin/v1/clients) or the key that signed its token, and a group whose token is refused
# would test nothing but the 401.
admin_token() {
  local id="st-admin-$1" secret fresh
  secret="$(client "$id" --audience gha-auth-admin --scope admin:clients --scope admin:users \
    --scope admin:keys --scope admin:link-keys --scope admin:broker --scope admin:audit --scope admin:monitor)"
  fresh="$(token "$id" "$secret")" || { tail -n 20 "$WORK/server.log" >&2; exit 1; }
  [[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $fresh" "$BASE/admin/v1/clients")" == 200 ]] \
    || { echo "the admin token is refused" >&2; exit 1; }
  echo "$fresh"
}

FAILED=()
# One worker: with two, hypothesis's lambda descriptions raced in CPython 3.11 threads ("AST
# constructor recursion depth mismatch"), an error of the tool, not of the server.
run_group() {
  local name="$1"; shift
  echo "== $name"
  if ! "$VENV/bin/st" run "$BASE/openapi.json" --checks all --max-time "$SECONDS_PER_GROUP" -w 1 \
    --phases examples,coverage,fuzzing --suppress-health-check all --no-color "$@" >"$WORK/$name.txt" 2>&1; then
    FAILED+=("$name")
  fi
  # The failures (without the reproduction commands, which carry the credentials), then the summary.
  sed -n '/ FAILURES \| ERRORS /,/ SUMMARY /p' "$WORK/$name.txt" | grep -v -e '^ *curl ' -e '^ *$' | cut -c1-240 || true
  sed -n '/ SUMMARY /,$p' "$WORK/$name.txt" | grep -v '^ *$'
}
# Without positive_data_acceptance: which scopes and audiences a client may ask for is its
# registration, not the schema, so a schema-valid `scope=x` is rightly invalid_scope (RFC 6749
# §5.2). Every other check runs.
run_group oauth --include-path-regex '^/oauth2/' --auth "st-oauth:$OAUTH_SECRET" \
  --exclude-checks positive_data_acceptance
run_group broker --include-path-regex '^/v1/(secrets|database)' \
  -H "Authorization: Bearer $BROKER_TOKEN"
run_group link-keys --include-path-regex '^/v1/link-keys' \
  -H "Authorization: Bearer $LINK_TOKEN"
run_group open --exclude-path-regex '^/(admin|oauth2|v1)/'
# The admin groups run last: an emergency secret rotation revokes a client's tokens (any group's).
# The emergency key rotation drops the key that signed the admin token and disabling a client
# may disable the admin client itself: those two run on their own, after the rest.
DESTRUCTIVE='(/keys/emergency-rotate|/clients/\{id\}/disable)$'
ADMIN_TOKEN="$(admin_token 1)"
run_group admin --include-path-regex '^/admin/' --exclude-path-regex "$DESTRUCTIVE" \
  --exclude-operation-id add_client -H "Authorization: Bearer $ADMIN_TOKEN"
# A registration's rules across fields (a grant needs an audience, the password grant only for
# first-party public clients, ...) are in the operation's description, not its schema, so
# positive_data_acceptance is left out for this one operation; every other check runs.
ADMIN_TOKEN="$(admin_token 2)"
run_group admin-registration --include-operation-id add_client \
  --exclude-checks positive_data_acceptance -H "Authorization: Bearer $ADMIN_TOKEN"
ADMIN_TOKEN="$(admin_token 3)"
run_group admin-destructive --include-path-regex "$DESTRUCTIVE" \
  -H "Authorization: Bearer $ADMIN_TOKEN"
kill -0 "$SERVER" || { echo "the server died" >&2; exit 1; }
if (( ${#FAILED[@]} )); then
  echo "groups with failures: ${FAILED[*]}"
  exit 1
fi
echo "no failures in any group"
