#!/usr/bin/env bash
# Runs every check of the project: formatting, lints, and all tests (unit, check kinds
# against real loopback servers, end-to-end against two real gobgpd).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

start=$(date +%s)
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --all-targets --locked
echo "test.sh: all passed in $(( $(date +%s) - start ))s"
