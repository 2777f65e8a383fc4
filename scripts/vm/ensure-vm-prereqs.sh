#!/usr/bin/env bash
# Prerequisites of the QEMU VM gateway (lab/vm/): installs only what is missing,
# with apt-get, and fetches Debian's kernel into a cache dir WITHOUT installing it
# (apt-get download + dpkg-deb -x: the host's /boot and /lib/modules are not touched).
#
#   scripts/vm/ensure-vm-prereqs.sh [CACHE_DIR]
#
# CACHE_DIR defaults to $CTO_VM_CACHE or <repo>/.vm/cache. On success the last line of
# stdout is `KERNEL_DIR=<dir>` (the dir holds vmlinuz, kver and modules/<kver>/) and
# <CACHE_DIR>/kernel/current points at it.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cache="${1:-${CTO_VM_CACHE:-$repo/.vm/cache}}"
mkdir -p "$cache/kernel"
log() { echo "[vm-prereqs] $*" >&2; }

if [ "$(id -u)" != 0 ]; then
  SUDO="sudo -n"
else
  SUDO=""
fi

apt_updated=0
apt_update_once() {
  if [ "$apt_updated" = 0 ]; then
    log "apt-get update"
    $SUDO apt-get update -qq >&2 || log "apt-get update failed (continuing with the lists we have)"
    apt_updated=1
  fi
}

# command -> Debian package that provides it
declare -A need=(
  [/usr/bin/qemu-system-x86_64]=qemu-system-x86
  [/usr/bin/busybox]=busybox-static
  [/usr/sbin/sshd]=openssh-server
  [/usr/bin/ssh]=openssh-client
  [/usr/bin/ssh-keygen]=openssh-client
  [/usr/sbin/conntrack]=conntrack
  [/usr/sbin/xtables-nft-multi]=iptables
  [/usr/sbin/xtables-legacy-multi]=iptables
  [/usr/sbin/nft]=nftables
  [/usr/sbin/sysctl]=procps
  [/usr/sbin/ip]=iproute2
  [/usr/bin/ss]=iproute2
  [/usr/bin/dmesg]=util-linux
  [/usr/bin/bash]=bash
  [/usr/bin/gcc]=gcc
  [/usr/bin/dpkg-deb]=dpkg
  [/usr/bin/xz]=xz-utils
  [/usr/bin/dash]=dash
)
missing=()
for path in "${!need[@]}"; do
  [ -x "$path" ] || missing+=("${need[$path]}")
done
# gcc -static needs libc.a
[ -f /usr/lib/x86_64-linux-gnu/libc.a ] || missing+=(libc6-dev)
# busybox (a dynamic one from the `busybox` package also works, but the static one is what we test with)
if [ -x /usr/bin/busybox ] && ! /usr/bin/busybox --list 2>/dev/null | grep -x depmod >/dev/null; then missing+=(busybox-static); fi

if [ "${#missing[@]}" -gt 0 ]; then
  mapfile -t pkgs < <(printf '%s\n' "${missing[@]}" | sort -u)
  log "installing: ${pkgs[*]}"
  apt_update_once
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >&2
fi

# --- the VM's kernel: Debian's linux-image-amd64, extracted into the cache ---------------
resolve_kernel_pkg() {
  apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ && !done {print $2; done=1}'
}
pkg="$(resolve_kernel_pkg || true)"
if [ -z "$pkg" ]; then
  apt_update_once
  pkg="$(resolve_kernel_pkg || true)"
fi
if [ -z "$pkg" ]; then
  if [ -e "$cache/kernel/current/ready" ]; then
    log "cannot resolve linux-image-amd64; using the cached kernel"
    echo "KERNEL_DIR=$(readlink -f "$cache/kernel/current")"
    exit 0
  fi
  log "cannot resolve linux-image-amd64 from apt and no kernel is cached"
  exit 1
fi
ver="$(apt-cache policy "$pkg" | awk '/Candidate:/ && !done {print $2; done=1}')"
kdir="$cache/kernel/${pkg}_${ver}"

if [ ! -e "$kdir/ready" ]; then
  log "fetching $pkg $ver (not installed on the host)"
  tmp="$(mktemp -d "$cache/kernel/.fetch.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  # _apt must be able to write the download dir.
  chmod 755 "$tmp"
  (cd "$tmp" && apt-get download -q "$pkg" >&2 2> >(grep -v 'unsandboxed' >&2))
  deb="$(ls "$tmp"/*.deb)"
  dpkg-deb -x "$deb" "$tmp/x"
  rm -f "$deb"
  kver="$(ls "$tmp/x/lib/modules")"
  mkdir -p "$tmp/out/modules"
  mv "$tmp/x/boot/vmlinuz-$kver" "$tmp/out/vmlinuz"
  mv "$tmp/x/boot/config-$kver" "$tmp/out/config"
  mv "$tmp/x/lib/modules/$kver" "$tmp/out/modules/$kver"
  echo "$kver" > "$tmp/out/kver"
  echo "$pkg $ver" > "$tmp/out/package"
  log "depmod (busybox) for $kver"
  # busybox depmod expects <base>/lib/modules/<kver>; mirror that layout.
  mkdir -p "$tmp/out/lib"
  ln -s ../modules "$tmp/out/lib/modules"
  busybox depmod -b "$tmp/out" "$kver"
  test -s "$tmp/out/modules/$kver/modules.dep"
  # Keep what a NAT gateway VM can need (net, virtio, crypto, lib, arch); the rest is
  # 300+ MB of drivers. The initramfs builder checks that every dependency it needs exists.
  m="$tmp/out/modules/$kver/kernel"
  rm -rf "$m/sound" "$m/fs" "$m/virt" "$m/mm" "$m/block"
  find "$m/drivers" -mindepth 1 -maxdepth 1 -type d \
    ! -name net ! -name virtio ! -name char -exec rm -rf {} +
  find "$m/drivers/char" -mindepth 1 -maxdepth 1 -type d ! -name hw_random -exec rm -rf {} +
  find "$m/drivers/net" -mindepth 1 -maxdepth 1 -type d -exec rm -rf {} +
  rm -rf "$kdir"
  mv "$tmp/out" "$kdir"
  touch "$kdir/ready"
  rm -rf "$tmp"
  trap - EXIT
  log "kernel $kver ready in $kdir ($(du -sh "$kdir" | cut -f1))"
fi
# Decompressing the bzImage (xz) takes ~10 s under TCG. Extract the ELF vmlinux once here
# and boot it through QEMU's PVH entry (the kernel has CONFIG_PVH=y): `boot` names the file.
if [ ! -s "$kdir/boot" ]; then
  boot=vmlinuz
  if grep -q '^CONFIG_PVH=y' "$kdir/config"; then
    pos="$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$kdir/vmlinuz" | head -n1 | cut -d: -f1 || true)"
    if [ -n "$pos" ]; then
      # xz reports the bzImage's trailer as corrupt data after the stream; the ELF is complete.
      tail -c +$((pos + 1)) "$kdir/vmlinuz" | xz -dc > "$kdir/vmlinux.tmp" 2>/dev/null || true
      if [ "$(head -c 4 "$kdir/vmlinux.tmp" | od -An -tx1 | tr -d ' ')" = 7f454c46 ]; then
        mv "$kdir/vmlinux.tmp" "$kdir/vmlinux"
        boot=vmlinux
      fi
    fi
    rm -f "$kdir/vmlinux.tmp"
  fi
  echo "$boot" > "$kdir/boot"
  log "boot image: $boot"
fi
ln -sfn "$(basename "$kdir")" "$cache/kernel/current"
echo "KERNEL_DIR=$kdir"
