#!/usr/bin/env bash
# The local lab, end to end on loopback: a "speaker" gobgpd driven by anycastd, a "router"
# gobgpd peering with it, a sample HTTP service, and anycastd checking that service.
# It shows the route arriving at the router, leaving it when the service stops, and coming
# back when it returns. Ports can be changed through the environment (see below).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
cargo build --release --locked --quiet

SPEAKER_API=${SPEAKER_API:-50061} ROUTER_API=${ROUTER_API:-50062} ROUTER_BGP=${ROUTER_BGP:-10179}
HTTP_PORT=${HTTP_PORT:-18080} METRICS_PORT=${METRICS_PORT:-19090}
PREFIX=192.0.2.1/32
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
router_rib() { gobgp -u 127.0.0.1 -p "$ROUTER_API" global rib -a ipv4; }
wait_rib() { # wait_rib present|absent
  for _ in $(seq 1 600); do
    if router_rib | grep -q "${PREFIX%/*}"; then [ "$1" = present ] && return 0; else [ "$1" = absent ] && return 0; fi
    sleep 0.1
  done
  echo "lab: timed out waiting for $PREFIX to be $1 at the router; logs in $work" >&2; trap - EXIT; exit 1
}

say "speaker gobgpd (API 127.0.0.1:$SPEAKER_API), configured by anycastd over gRPC"
gobgpd --api-hosts "127.0.0.1:$SPEAKER_API" --pprof-disable >"$work/speaker.log" 2>&1 & pids+=($!)

say "router gobgpd (API 127.0.0.1:$ROUTER_API, BGP 127.0.0.1:$ROUTER_BGP), AS 65000"
cat >"$work/router.toml" <<TOML
[global.config]
  as = 65000
  router-id = "10.255.0.2"
  port = $ROUTER_BGP
  local-address-list = ["127.0.0.1"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "127.0.0.1"
    peer-as = 65001
  [neighbors.transport.config]
    passive-mode = true
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
TOML
gobgpd -f "$work/router.toml" --api-hosts "127.0.0.1:$ROUTER_API" --pprof-disable >"$work/router.log" 2>&1 & pids+=($!)

say "sample service: HTTP on 127.0.0.1:$HTTP_PORT"
start_service() { python3 -m http.server "$HTTP_PORT" --bind 127.0.0.1 --directory "$work" >/dev/null 2>&1 & service_pid=$!; pids+=("$service_pid"); }
start_service

cat >"$work/anycastd.yaml" <<YAML
announcer:
  router_id: 10.255.0.1
  local_address: 127.0.0.1
  local_asn: 65001
  next_hop: 198.51.100.1   # gobgpd drops routes whose next hop is on loopback
  routes: [$PREFIX]
  peers:
    - name: router
      remote_address: 127.0.0.1
      remote_asn: 65000
      remote_port: $ROUTER_BGP
  gobgp:
    address: 127.0.0.1:$SPEAKER_API
services:
  - name: web
    check_interval: 1s
    checks:
      - kind: http_2xx
        spec:
          url: http://127.0.0.1:$HTTP_PORT/
          timeout: 500ms
metrics:
  address: 127.0.0.1:$METRICS_PORT
YAML
say "anycastd config"
target/release/anycastd --config "$work/anycastd.yaml" check-config
LOG_LEVEL=info target/release/anycastd --config "$work/anycastd.yaml" 2>"$work/anycastd.log" & pids+=($!)

say "waiting for $PREFIX at the router (the BGP session takes 5-10 s)"
wait_rib present
router_rib

say "stopping the service: anycastd withdraws the route"
kill "$service_pid"; t0=$(date +%s%N)
wait_rib absent
echo "gone from the router $(( ($(date +%s%N) - t0) / 1000000 )) ms after the service stopped"
router_rib

say "starting the service again: the route comes back"
start_service
wait_rib present
router_rib

say "metrics (http://127.0.0.1:$METRICS_PORT/metrics)"
curl -s "http://127.0.0.1:$METRICS_PORT/metrics" | grep -E '^anycastd_(service_up|route_announced|gobgp_up|check_up)'

say "anycastd log"
cat "$work/anycastd.log"
