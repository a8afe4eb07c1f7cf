#!/usr/bin/env bash
# Runs every check of the project: formatting, lints, and all tests (unit, check kinds
# against real loopback servers, end-to-end against two real gobgpd, the images and the
# Debian package under rootful podman).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

start=$(date +%s)
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --all-targets --locked --no-run

# The container and package tests (tests/containers/) need the release binary and cargo-deb.
# Built at the lowest priority while the other tests run: those mostly wait (a BGP session
# takes 5 to 9 s), so the release build (2 to 4 minutes) costs them almost nothing, and the
# suite takes 2 minutes less than building it after them (measured from a fresh clone, caches warm:
# 15 min 04 s before, 12 min 42 s and 12 min 59 s after).
mkdir -p target
artifacts_log=target/test-artifacts.log
(
  set -e
  # cargo-deb: installed once into ~/.cargo/bin, kept between runs; 3.x for the
  # systemd-units list of Cargo.toml's [package.metadata.deb].
  if ! cargo deb --version 2>/dev/null | grep -q '^cargo-deb 3\.'; then
    echo "test.sh: installing cargo-deb (cargo install, a few minutes once)"
    nice -n 19 cargo install cargo-deb --locked --version '^3.8'
  fi
  nice -n 19 cargo build --release --locked --bin anycastd
) >"$artifacts_log" 2>&1 &
artifacts=$!
# On a failure below: stop the background build too (cargo under nice, then its subshell).
trap 'pkill -P $artifacts 2>/dev/null || true; kill $artifacts 2>/dev/null || true' EXIT

# Everything but the container tests (the modules images, kube and package of
# tests/containers/, whose binary runs here with no test selected), then those.
cargo test --all-targets --locked -- --skip images:: --skip kube:: --skip package::
if ! wait $artifacts; then
  cat "$artifacts_log"
  echo "test.sh: building the release binary or installing cargo-deb failed (above)" >&2
  exit 1
fi
cargo test --locked --test containers
echo "test.sh: all passed in $(( $(date +%s) - start ))s"
