#!/usr/bin/env bash
# `make dev`: local DynamoDB (Dynoxide, with its TTL sweep) with the table from template.yaml, the functions
# under `cargo lambda watch` (the API at /lambda-url/session-api/), and a stream runner
# that feeds the table's stream to the functions mapped to it, as Lambda would. Ctrl-C, SIGTERM or SIGHUP stops everything it started;
# if this script dies without stopping them (SIGKILL), each child gets SIGTERM from the
# kernel (the parent-death signal that setpriv sets), so none outlives it.
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

# A port already taken means another copy (or anything else) is there: refuse rather than
# talk to it.
refuse_taken() {
  local name=$1 port=$2 owner
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    # ss prints the owner as users:(("python",pid=123,fd=3)) where it may tell.
    owner=$(ss -Hltnp "sport = :$port" 2>/dev/null \
      | sed -nE 's/.*users:\(\("([^"]*)",pid=([0-9]+).*/\1 (pid \2)/p' | head -n 1 || true)
    echo "make dev: port $port ($name) is already in use${owner:+ by $owner}; stop that process or set $name to a free port" >&2
    exit 1
  fi
}
refuse_taken DYNAMODB_PORT "$DYNAMODB_PORT"
refuse_taken API_PORT "$API_PORT"

# Each background job gets its own process group, so stopping a group stops its children.
set -m
groups=()
stop() {
  trap - INT TERM HUP EXIT
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
trap 'stop; exit 129' HUP
trap stop EXIT

# Waits until the job with process id $2 listens on port $1; fails if the job ends first.
wait_for_port() {
  for _ in $(seq 600); do
    kill -0 "$2" 2>/dev/null || { echo "make dev: the process for 127.0.0.1:$1 ended" >&2; return 1; }
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "make dev: nothing listens on 127.0.0.1:$1" >&2
  return 1
}

# Started through setpriv so that the kernel sends SIGTERM to the child when this script
# dies, whatever kills it.
orphan_safe=(setpriv --pdeathsig TERM --)
# Dynoxide through its library (testkit's local-dynamodb), which also runs the TTL sweep
# every DYNAMODB_TTL_SWEEP_SECONDS (default 2): expired items are deleted as DynamoDB's
# TTL deletes them, and their stream records reach the auditor. Built first, so that
# the wait below is for the server, not the compiler.
cargo build --quiet --locked -p testkit --bin local-dynamodb --bin create-table
"${orphan_safe[@]}" cargo run --quiet --locked -p testkit --bin local-dynamodb -- \
  --port "$DYNAMODB_PORT" --sweep-seconds "${DYNAMODB_TTL_SWEEP_SECONDS:-2}" &
groups+=($!)
wait_for_port "$DYNAMODB_PORT" "${groups[-1]}"
echo "make dev: DynamoDB (Dynoxide) on $AWS_ENDPOINT_URL_DYNAMODB"
cargo run --quiet --locked -p testkit --bin create-table -- "$SESSION_TABLE"

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

# Lambda's event source mappings on the table's stream, as template.yaml declares them:
# the stream runner feeds the auditor (and any other mapped function) through the
# emulator below, so audit lines show up here as writes happen.
"${orphan_safe[@]}" python tools/stream_runner.py --endpoint "$AWS_ENDPOINT_URL_DYNAMODB" \
  --table "$SESSION_TABLE" --invoke-port "$API_PORT" &
groups+=($!)

# cargo-lambda itself (not `cargo lambda`, which would leave it a grandchild) gets the
# parent-death signal; on SIGTERM it ends the function it runs.
"${orphan_safe[@]}" cargo-lambda lambda watch --invoke-address 127.0.0.1 --invoke-port "$API_PORT" "${env_args[@]}" &
groups+=($!)
wait "${groups[-1]}"
