#!/usr/bin/env bash
# Scratch NAT gateway for diagnostics tests and fixture recording.
#
#   scratch-gateway.sh up   <name>   create  <name> (gateway), <name>-c (client), <name>-s (server)
#   scratch-gateway.sh down <name>   delete all three (idempotent)
#
#   client 198.18.0.2/24  --lan0-- gateway 198.18.0.1 | 198.19.0.1 --wan0-- server 198.19.0.2/24
#   client 2001:2:0:1::2/64        gateway 2001:2:0:1::1 | 2001:2:0:2::1   server 2001:2:0:2::2/64
#
# The gateway MASQUERADEs everything leaving wan0 (iptables and ip6tables). Addresses
# are benchmarking ranges only (198.18.0.0/15, 2001:2::/48). sysctl and iptables run
# ONLY inside the new namespaces (ip netns exec), never in the initial namespace.
set -euo pipefail

cmd=${1:?usage: $0 up|down <name>}
name=${2:?usage: $0 up|down <name>}
case "$name" in
  cto-fixture-*) ;;
  *) echo "refusing: namespace name must start with cto-fixture-" >&2; exit 2 ;;
esac

gw=$name
cl=$name-c
sv=$name-s

down() {
  for ns in "$cl" "$sv" "$gw"; do
    ip netns del "$ns" 2>/dev/null || true
  done
}

up() {
  ip netns add "$gw"
  ip netns add "$cl"
  ip netns add "$sv"
  # veth pairs are created directly inside the scratch namespaces.
  ip -n "$gw" link add lan0 type veth peer name eth0 netns "$cl"
  ip -n "$gw" link add wan0 type veth peer name eth0 netns "$sv"
  for ns in "$gw" "$cl" "$sv"; do ip -n "$ns" link set lo up; done

  ip -n "$gw" addr add 198.18.0.1/24 dev lan0
  ip -n "$gw" addr add 198.19.0.1/24 dev wan0
  ip -n "$gw" addr add 2001:2:0:1::1/64 dev lan0 nodad
  ip -n "$gw" addr add 2001:2:0:2::1/64 dev wan0 nodad
  ip -n "$gw" link set lan0 up
  ip -n "$gw" link set wan0 up

  ip -n "$cl" addr add 198.18.0.2/24 dev eth0
  ip -n "$cl" addr add 2001:2:0:1::2/64 dev eth0 nodad
  ip -n "$cl" link set eth0 up
  ip -n "$cl" route add default via 198.18.0.1
  ip -n "$cl" -6 route add default via 2001:2:0:1::1

  ip -n "$sv" addr add 198.19.0.2/24 dev eth0
  ip -n "$sv" addr add 2001:2:0:2::2/64 dev eth0 nodad
  ip -n "$sv" link set eth0 up

  ip netns exec "$gw" sysctl -qw net.ipv4.ip_forward=1
  ip netns exec "$gw" sysctl -qw net.ipv6.conf.all.forwarding=1
  ip netns exec "$gw" iptables -t nat -A POSTROUTING -o wan0 -j MASQUERADE
  ip netns exec "$gw" ip6tables -t nat -A POSTROUTING -o wan0 -j MASQUERADE
}

case "$cmd" in
  up)
    # Never leave half a topology behind.
    if ! up; then down; exit 1; fi
    ;;
  down) down ;;
  *) echo "usage: $0 up|down <name>" >&2; exit 2 ;;
esac
