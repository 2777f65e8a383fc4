#!/usr/bin/env bash
# Installs what conntrack-ops' demo and tests need, only when it is missing.
# Debian packages (needs root): redis-server, OpenSSH, conntrack, iptables, nftables, iproute2, sudo;
# QEMU + a Debian kernel for the VM gateway tests (scripts/vm/ensure-vm-prereqs.sh);
# then npm dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."

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
)
missing=()
for bin in "${!need[@]}"; do
  if ! command -v "$bin" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$bin" ]; then
    missing+=("${need[$bin]}")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "conntrack-ops needs these Debian packages: ${missing[*]} (run as root, or install them)" >&2
    exit 1
  fi
  echo "installing: $(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${missing[@]}" | sort -u) >/dev/null
fi

if [ -x scripts/vm/ensure-vm-prereqs.sh ] && [ "${CONNTRACK_OPS_SKIP_VM:-0}" != 1 ]; then
  bash scripts/vm/ensure-vm-prereqs.sh
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund >/dev/null
fi
