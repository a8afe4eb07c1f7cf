#!/usr/bin/env bash
# The benchmark of BENCHMARKS.md, in one command: installs what is missing (gobgpd, exabgp,
# curl, Rust), then runs `cargo bench --bench anycast` with real gobgpd speaker and router,
# the release anycastd and ExaBGP's healthcheck side by side. Arguments pick sections:
# latency, footprint, scale, watch, many (default: all), and bfd (only when named: root, network
# namespaces, GoBGP 4.8.0; BENCH_BFD_CYCLES). BENCH_CYCLES, BENCH_SECONDS and
# BENCH_WATCH_CYCLES tune it; BENCH_GOBGP lists the GoBGP releases to run against. The watch
# section needs python3 (its targets are real processes).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
if ! command -v exabgp >/dev/null; then
  echo "bench: installing exabgp" >&2
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends exabgp >/dev/null
fi
# shellcheck disable=SC1091
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
mkdir -p target
# BENCH_GOBGP: the GoBGP releases to run the sections against, one after the other
# (4.8.0, 3.37.0, debian; default 4.8.0 alone), e.g. BENCH_GOBGP="4.8.0 debian".
: > target/bench-results.md
for release in ${BENCH_GOBGP:-4.8.0}; do
  ANYCASTD_TEST_GOBGP=$release cargo bench --locked --bench anycast -- "$@" | tee -a target/bench-results.md
done
echo "bench: figures written to target/bench-results.md" >&2
