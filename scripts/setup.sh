#!/usr/bin/env bash
# Installs what anycastd's build, tests and lab need, when missing, on Debian/Ubuntu.
set -euo pipefail

need=()
command -v gobgpd >/dev/null || need+=(gobgpd)
[ -x /usr/sbin/in.tftpd ] || need+=(tftpd-hpa)
# The check kinds' real servers: chronyd for ntp (tests/check_ntp.rs), knotd twice, primary
# and secondary, for dns_lookup's soa_serial_of (tests/check_dns.rs). The tests run them in the
# foreground on loopback; their system services are not started (below).
[ -x /usr/sbin/chronyd ] || need+=(chrony)
[ -x /usr/sbin/knotd ] || need+=(knot)
command -v kill >/dev/null || need+=(procps)
command -v python3 >/dev/null || need+=(python3)
command -v ip >/dev/null || need+=(iproute2)
command -v curl >/dev/null || need+=(curl)
command -v promtool >/dev/null || need+=(prometheus)
/usr/bin/python3 -c "import jsonschema" 2>/dev/null || need+=(python3-jsonschema)
command -v cc >/dev/null || need+=(gcc libc6-dev)
# etcd-client's build script runs protoc on etcd's .proto files, which import Google's.
command -v protoc >/dev/null || need+=(protobuf-compiler)
[ -f /usr/include/google/protobuf/descriptor.proto ] || need+=(libprotobuf-dev)
# Fleet guard tests: a real 3-member etcd cluster on loopback.
command -v etcd >/dev/null || need+=(etcd-server)
# Delivery tests: systemd-analyze verify on systemd/, setpriv for the unprivileged e2e run,
# a compose implementation to validate compose.yaml (docker's v2 plugin, or Debian's).
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v setpriv >/dev/null || need+=(util-linux)
{ docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null; } || need+=(docker-compose)
# Container and package tests (tests/containers/): rootful podman with runc (crun refuses
# this kernel's hybrid cgroups), catatonit for the pods' infra containers,
# mmdebstrap for the base images (no registry needed), dpkg-deb to read the package.
command -v podman >/dev/null || need+=(podman)
[ -x /usr/sbin/runc ] || command -v runc >/dev/null || need+=(runc)
command -v catatonit >/dev/null || need+=(catatonit)
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v dpkg-deb >/dev/null || need+=(dpkg)
# BFD tests (tests/bfd.rs): FRR's bgpd, bfdd and zebra as a router (run by the tests, never
# started as a service), iproute2 for the network namespaces.
[ -x /usr/lib/frr/bfdd ] || need+=(frr)
command -v ip >/dev/null || need+=(iproute2)
# The Kubernetes manifests' tools (below) need a Python venv.
/usr/bin/python3 -c "import ensurepip, venv" 2>/dev/null || need+=(python3-venv)
if ((${#need[@]})); then
  echo "setup: installing ${need[*]}" >&2
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  # Install, never start: policy-rc.d exiting 101 ("action forbidden") is what invoke-rc.d
  # and deb-systemd-invoke ask before starting a package's service (chrony, knot, tftpd-hpa
  # would otherwise start system daemons). A temporary one, unless the machine has its own.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod 755 /usr/sbin/policy-rc.d
    trap '$sudo rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The Kubernetes manifests (deploy/kubernetes/; tests/delivery.rs, tests/containers/kube.rs):
# kustomize renders them as `kubectl apply -k` does; kubernetes-validate checks them against
# the Kubernetes OpenAPI schemas, which its package ships (no network needed once installed).
# Both go to ANYCASTD_TOOLS (default ~/.local/share/anycastd-tools), kept between runs.
tools=${ANYCASTD_TOOLS:-$HOME/.local/share/anycastd-tools}
mkdir -p "$tools/bin"
if [ ! -x "$tools/bin/kustomize" ]; then
  go=$(command -v go || echo /usr/local/go/bin/go)
  if [ ! -x "$go" ]; then
    echo "setup: kustomize is built with Go (1.22 or later), which is not installed: install Go, then run this again" >&2
    exit 1
  fi
  echo "setup: installing kustomize into $tools/bin (go install, about 2 minutes once)" >&2
  GOBIN="$tools/bin" "$go" install sigs.k8s.io/kustomize/kustomize/v5@v5.7.1
fi
if [ ! -x "$tools/bin/kubernetes-validate" ]; then
  echo "setup: installing kubernetes-validate into $tools (a Python venv)" >&2
  rm -rf "$tools/kubernetes-validate"
  /usr/bin/python3 -m venv "$tools/kubernetes-validate"
  "$tools/kubernetes-validate/bin/pip" install -q --disable-pip-version-check 'kubernetes-validate==1.37.0'
  ln -sf ../kubernetes-validate/bin/kubernetes-validate "$tools/bin/kubernetes-validate"
fi

# Upstream GoBGP (SPEC 15): the tests run GoBGP 4.8.0 by default and 3.37.0 in the
# compatibility matrix, beside Debian's 3.10 (/usr/bin/gobgpd). Built with `go install` once
# per machine into ANYCASTD_GOBGP_CACHE (default ~/.cache/anycastd-gobgp/VERSION/); the test
# harness (tests/common/gobgpd.rs) builds them the same way when they are missing.
gobgp_cache=${ANYCASTD_GOBGP_CACHE:-$HOME/.cache/anycastd-gobgp}
# 4.5.0: the BFD tests' gobgpd that has BFD in its API but does not run it.
for module in github.com/osrg/gobgp/v4@v4.8.0 github.com/osrg/gobgp/v3@v3.37.0 github.com/osrg/gobgp/v4@v4.5.0; do
  version=${module##*@v}
  dir="$gobgp_cache/$version"
  if [ ! -x "$dir/gobgpd" ] || [ ! -x "$dir/gobgp" ]; then
    go=$(command -v go || echo /usr/local/go/bin/go)
    if [ ! -x "$go" ]; then
      echo "setup: GoBGP $version is built with Go (1.22 or later), which is not installed: install Go, then run this again" >&2
      exit 1
    fi
    echo "setup: building GoBGP $version into $dir (go install, about 2 minutes once)" >&2
    mkdir -p "$dir"
    GOBIN="$dir" "$go" install "${module%@*}/cmd/gobgpd@v$version" "${module%@*}/cmd/gobgp@v$version"
  fi
done

if ! command -v cargo >/dev/null; then
  # Debian's own cargo is too old for edition 2024: use rustup.
  echo "setup: installing the Rust toolchain with rustup" >&2
  curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component clippy,rustfmt
  # shellcheck disable=SC1091
  . "$HOME/.cargo/env"
fi
