"""Checks that the binaries `make dev` builds on their own reuse the test build.

Cargo resolves features for the packages a command selects, so `cargo run --bin
session-api` (what `cargo lambda watch` runs) can need other features than `cargo test
--workspace` and compile the AWS SDK a second time. tools/workspace-hack keeps them equal;
this fails, naming what would be compiled again, when a change brings a difference back.
Run after the workspace's test build."""

import json
import subprocess
import sys

# (package, binary): what tools/dev.sh and `cargo lambda watch` / `cargo lambda invoke` build.
BINARIES = [
    ("session-api", "session-api"),
    ("session-cleanup", "session-cleanup"),
    ("session-auditor", "session-auditor"),
    ("testkit", "create-table"),
    ("testkit", "local-dynamodb"),
]


def rebuilt(package, binary):
    run = subprocess.run(
        ["cargo", "build", "--locked", "--message-format", "json", "-p", package, "--bin", binary],
        capture_output=True, text=True, check=True)
    messages = (json.loads(line) for line in run.stdout.splitlines() if line.startswith("{"))
    return [m["package_id"] for m in messages if m.get("reason") == "compiler-artifact" and not m["fresh"]]


def main():
    failed = False
    for package, binary in BINARIES:
        stale = rebuilt(package, binary)
        print(f"{'ok  ' if not stale else 'FAIL'} {binary} reuses the test build", flush=True)
        for package_id in stale:
            print(f"     compiled again: {package_id}")
        failed |= bool(stale)
    if failed:
        print("add the differing features to tools/workspace-hack/Cargo.toml "
              "(compare `cargo tree -e features` for the package and for --workspace)")
        sys.exit(1)


if __name__ == "__main__":
    main()
