#!/usr/bin/env bash
# `make dev`: local DynamoDB (moto) with the table from template.yaml, and the session
# API under `cargo lambda watch`. Ctrl-C or SIGTERM stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."

DYNAMODB_PORT="${DYNAMODB_PORT:-8000}"
API_PORT="${API_PORT:-9000}"
export SESSION_TABLE="${SESSION_TABLE:-sessions}"
export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:${DYNAMODB_PORT}"
export AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-local}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-local}"
export RUST_LOG="${RUST_LOG:-info}"
PATH="$PWD/.venv/bin:$PATH"

# Each background job gets its own process group, so stopping a group stops its children.
set -m
groups=()
stop() {
  trap - INT TERM EXIT
  for pgid in "${groups[@]}"; do
    kill -TERM -- "-$pgid" 2>/dev/null || true
  done
  for pgid in "${groups[@]}"; do
    for _ in $(seq 50); do kill -0 -- "-$pgid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pgid" 2>/dev/null || true
  done
  echo "make dev: stopped"
}
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM
trap stop EXIT

wait_for_port() {
  for _ in $(seq 600); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "make dev: nothing listens on 127.0.0.1:$1" >&2
  return 1
}

python tools/local_dynamodb.py -H 127.0.0.1 -p "$DYNAMODB_PORT" >/dev/null 2>&1 &
groups+=($!)
wait_for_port "$DYNAMODB_PORT"
echo "make dev: DynamoDB (moto) on $AWS_ENDPOINT_URL_DYNAMODB"
cargo run --quiet -p testkit --bin create-table -- "$SESSION_TABLE"

# The function sees the caller's SESSION_*, DJANGO_* and RUST_LOG settings, and the
# local endpoint and dummy credentials.
env_args=()
while IFS= read -r name; do
  env_args+=(--env-var "$name=${!name}")
done < <(compgen -e | grep -E '^(SESSION_|DJANGO_|RUST_LOG$|AWS_ENDPOINT_URL_DYNAMODB$|AWS_REGION$|AWS_ACCESS_KEY_ID$|AWS_SECRET_ACCESS_KEY$)')

base="http://127.0.0.1:${API_PORT}/lambda-url/session-api"
cat <<TXT
make dev: the session API answers at $base/sessions once it has compiled. Try:

  curl -si -X POST $base/sessions -H 'content-type: application/json' -d '{"data": {"cart": ["book"]}}'
  curl -si $base/sessions/KEY
  curl -si -X PATCH $base/sessions/KEY -H 'content-type: application/merge-patch+json' -H 'if-match: "1"' -d '{"theme": "dark"}'
  curl -si -X POST $base/sessions/KEY/cycle
  curl -si -X DELETE $base/sessions/NEW_KEY

Ctrl-C stops it all.
TXT

cargo lambda watch --invoke-address 127.0.0.1 --invoke-port "$API_PORT" "${env_args[@]}" &
groups+=($!)
wait "${groups[-1]}"
