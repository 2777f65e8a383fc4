#!/usr/bin/env bash
# Installs what conntrack-ops' demo, lab and tests need, only when it is missing.
# Debian packages (needs root): redis-server, OpenSSH, conntrack, iptables, nftables, iproute2, sudo,
# gcc + libc6-dev (the lab's native traffic generator, lab/native/ctgen.c),
# prometheus + prometheus-alertmanager + prometheus-node-exporter (promtool/amtool for the rule
# pack's tests, and the real monitoring stack of test/e2e/prometheus.test.ts: installed without
# starting their services, the tests run them on loopback themselves);
# with --vm (npm test) also QEMU + a Debian kernel for the VM gateway tests
# (scripts/vm/ensure-vm-prereqs.sh; CONNTRACK_OPS_SKIP_VM=1 skips them); then npm dependencies.
# `npm run lab -- vm up` fetches the VM's prerequisites itself when they are missing (lab/vm/initramfs.ts).
#
#   scripts/ensure-prereqs.sh [--vm]
set -euo pipefail
cd "$(dirname "$0")/.."

with_vm=0
case "${1:-}" in
  --vm) with_vm=1 ;;
  '') ;;
  *) echo "usage: $0 [--vm]" >&2; exit 2 ;;
esac

declare -A need=(
  [redis-server]=redis-server
  [sshd]=openssh-server
  [ssh]=openssh-client
  [ssh-keygen]=openssh-client
  [conntrack]=conntrack
  [iptables]=iptables
  [nft]=nftables
  [ip]=iproute2
  # the tests log in as a non-root gateway user limited by docs/sudoers.conntrack-ops
  [sudo]=sudo
  [visudo]=sudo
  # the lab compiles its UDP generator (lab/native/ctgen.c); without it a slower Node one fills
  [gcc]=gcc
  # the rule pack's tests and the Prometheus -> Alertmanager -> bot e2e
  [prometheus]=prometheus
  [promtool]=prometheus
  [prometheus-alertmanager]=prometheus-alertmanager
  [amtool]=prometheus-alertmanager
  [prometheus-node-exporter]=prometheus-node-exporter
)
missing=()
for bin in "${!need[@]}"; do
  if ! command -v "$bin" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$bin" ]; then
    missing+=("${need[$bin]}")
  fi
done
[ -f /usr/include/stdio.h ] || missing+=(libc6-dev)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "conntrack-ops needs these Debian packages: ${missing[*]} (run as root, or install them)" >&2
    exit 1
  fi
  echo "installing: $(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')" >&2
  export DEBIAN_FRONTEND=noninteractive
  # Packages with services (prometheus, alertmanager, node-exporter, redis, sshd) must not start
  # them: a policy-rc.d that refuses (101) while installing, removed afterwards if it was ours.
  own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    own_policy=1
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${missing[@]}" | sort -u) >/dev/null
  if [ "$own_policy" = 1 ]; then
    rm -f /usr/sbin/policy-rc.d
    trap - EXIT
  fi
fi

if [ "$with_vm" = 1 ] && [ "${CONNTRACK_OPS_SKIP_VM:-0}" != 1 ]; then
  bash scripts/vm/ensure-vm-prereqs.sh
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund >/dev/null
fi
