#!/bin/sh
# gobgpd-bound: runs gobgpd, and restarts it fresh (no peers, no routes) once anycastd has
# stopped answering GET /healthz for a while, so that no route stays announced without the
# health checks behind it. It also restarts a gobgpd that died. The gobgpd container of the
# compose stack runs it as its entrypoint: the container, and with it the network namespace
# that anycastd shares (network_mode: service:gobgpd), stays up across these restarts, and
# anycastd sets the new gobgpd up again by itself when it comes back.
#
# On SIGTERM it keeps gobgpd until anycastd has stopped answering on that endpoint (at most
# ANYCASTD_STOP_WAIT seconds), then stops it: where both containers get SIGTERM at once (a
# deleted Kubernetes pod, `podman pod stop`), anycastd's graceful withdraw (GRACEFUL_SHUTDOWN
# for drain_linger, then the withdraw) still goes out through this gobgpd. compose stops
# anycastd first (depends_on), so there it does not wait.
#
# Arguments: gobgpd's. Environment:
#   ANYCASTD_HEALTHZ      anycastd's metrics endpoint (default 127.0.0.1:9090)
#   ANYCASTD_GRACE        seconds without a healthy answer before gobgpd is restarted (30);
#                         `off`: never (the Kubernetes DaemonSet leaves that to gobgpd's
#                         liveness probe)
#   ANYCASTD_PROBE_EVERY  seconds between probes (5)
#   ANYCASTD_STOP_WAIT    on SIGTERM, seconds to wait at most for anycastd to finish (20)
#   GOBGPD, ANYCASTD      the binaries (default: gobgpd and anycastd from PATH)
# gobgpd is only restarted after anycastd was seen healthy since gobgpd's last start: a
# gobgpd that anycastd never set up announces nothing.
set -u
healthz=${ANYCASTD_HEALTHZ:-127.0.0.1:9090}
grace=${ANYCASTD_GRACE:-30}
every=${ANYCASTD_PROBE_EVERY:-5}
stop_wait=${ANYCASTD_STOP_WAIT:-20}
gobgpd=${GOBGPD:-gobgpd}
anycastd=${ANYCASTD:-anycastd}

log() { echo "gobgpd-bound: $*" >&2; }

pid=
start() {
  "$gobgpd" "$@" &
  pid=$!
  seen_healthy=0
  log "started gobgpd (pid $pid)"
}
stop_gobgpd() {
  kill -TERM "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
}
# Whether anycastd answers on its endpoint at all: healthy, or saying why not (while it
# withdraws, some of its loops have ended and /healthz says so). Not when it is gone or
# frozen (no answer within the timeout).
answers() {
  said=$("$anycastd" healthcheck --address "$healthz" --timeout 1s 2>/dev/null) && return 0
  case $said in *"/healthz answered"*) return 0 ;; esac
  return 1
}
stopping() {
  trap 'log "asked again: stopping gobgpd now"; stop_gobgpd; exit 0' TERM INT
  log "stopping: waiting for anycastd to finish first (at most ${stop_wait}s)"
  since=$(date +%s)
  while answers; do
    if [ $(($(date +%s) - since)) -ge "$stop_wait" ]; then
      log "anycastd still answers after ${stop_wait}s: stopping gobgpd anyway"
      break
    fi
    sleep 0.2
  done
  log "stopping gobgpd ($(($(date +%s) - since))s after SIGTERM)"
  stop_gobgpd
  exit 0
}
trap stopping TERM INT

start "$@"
last_ok=$(date +%s)
while :; do
  # Sleep in the background and wait for it, so that TERM is handled at once.
  sleep "$every" &
  wait $!
  now=$(date +%s)
  if ! kill -0 "$pid" 2>/dev/null; then
    wait "$pid"
    log "gobgpd exited with status $?; starting it again"
    sleep 1
    start "$@"
    last_ok=$now
    continue
  fi
  if [ "$grace" = off ]; then
    :
  elif "$anycastd" healthcheck --address "$healthz" --timeout 2s >/dev/null 2>&1; then
    [ "$seen_healthy" = 1 ] || log "anycastd is healthy at $healthz"
    seen_healthy=1
    last_ok=$now
  elif [ "$seen_healthy" = 1 ] && [ $((now - last_ok)) -ge "$grace" ]; then
    log "anycastd has not been healthy for $((now - last_ok))s: restarting gobgpd so that its routes go"
    stop_gobgpd
    start "$@"
    last_ok=$now
  fi
done
