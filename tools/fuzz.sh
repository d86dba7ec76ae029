#!/usr/bin/env bash
# Runs libFuzzer on each fuzz target for FUZZ_SECONDS (default 60) through cargo fuzz,
# on the stable toolchain without a sanitizer (the checks are assertions in
# fuzz/src/lib.rs). New inputs are added to fuzz/corpus/<target>; a crash stops the run
# and leaves its input in fuzz/artifacts/<target>/. Prints the executions per target.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-60}"
targets=(${FUZZ_TARGETS:-session_key django_decode api_request stream_record})
export PATH="$PWD/.tools/bin:$PATH"
log_dir="$(mktemp -d)"
trap 'rm -rf "$log_dir"' EXIT
cargo fuzz build --features libfuzzer --sanitizer none
for target in "${targets[@]}"; do
  echo "fuzz: $target for ${seconds}s"
  cargo fuzz run --features libfuzzer --sanitizer none "$target" -- \
    -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
    >"$log_dir/$target.log" 2>&1 || { tail -40 "$log_dir/$target.log"; exit 1; }
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log_dir/$target.log")
  corpus=$(find "fuzz/corpus/$target" -type f | wc -l)
  echo "fuzz: $target: $runs executions, no crash; corpus now $corpus files"
done
