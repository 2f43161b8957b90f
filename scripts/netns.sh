#!/usr/bin/env bash
# A kernel peer for ustack: a network namespace at the far end of a veth pair.
#
#   root namespace                         namespace NAME
#   NAME-h (no address, IPv6 off)  <--->   NAME-p 10.99.N.1/24  (the Linux kernel)
#   ^ ustack drives it with --vdev=net_af_packet0,iface=NAME-h and takes 10.99.N.2/24
#
# Use as a command:
#   scripts/netns.sh up NAME [N]     create (recreate if present); prints the variables below
#   scripts/netns.sh down NAME       remove (no error when absent)
# or source it and call netns_up / netns_down, which set in the caller:
#   NETNS_NAME NETNS_HOST_IF NETNS_PEER_IF NETNS_PEER_IP NETNS_USTACK_IP NETNS_PREFIX NETNS_SUBNET
#
# NAME is at most 13 characters (interface names are at most 15). N (1..254,
# default 1) picks the subnet 10.99.N.0/24; namespaces are separate, so two
# runs may use the same N.
#
# Why the knobs:
#  - checksum offload, TSO/GSO and GRO off on both ends: with them on, the
#    kernel hands frames to the veth with only a partial (pseudo-header)
#    TCP/UDP checksum, or as 64 KiB super-frames, and AF_PACKET passes them
#    to ustack that way; a real wire never carries either.
#  - IPv6 off on both ends: no stray router/neighbour solicitations or MLD
#    reports in captures and drop counters.
#  - on the near end, forwarding off and arp_ignore=8: the root namespace's
#    kernel also sees every frame on NAME-h; it must neither route nor answer
#    ARP for what arrives there (it has no address on it; ustack answers).

netns__need_tools() {
  if ! command -v ethtool >/dev/null 2>&1; then
    echo "netns.sh: installing ethtool" >&2
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ethtool >/dev/null
  fi
}

netns__vars() {
  local name=$1 n=${2:-1}
  NETNS_NAME=$name
  NETNS_HOST_IF=$name-h
  NETNS_PEER_IF=$name-p
  NETNS_PEER_IP=10.99.$n.1
  NETNS_USTACK_IP=10.99.$n.2
  NETNS_PREFIX=24
  NETNS_SUBNET=10.99.$n.0/24
}

netns_down() {
  local name=${1:?usage: netns_down NAME}
  ip netns pids "$name" 2>/dev/null | xargs -r kill 2>/dev/null || true
  ip netns del "$name" 2>/dev/null || true
  # Deleting the namespace destroys the pair; this covers a half-made one.
  ip link del "$name-h" 2>/dev/null || true
  return 0
}

netns_up() {
  local name=${1:?usage: netns_up NAME [N]} n=${2:-1}
  if [ ${#name} -gt 13 ]; then
    echo "netns.sh: name '$name' is longer than 13 characters" >&2
    return 1
  fi
  case $n in '' | *[!0-9]*) echo "netns.sh: N must be 1..254" >&2; return 1 ;; esac
  if [ "$n" -lt 1 ] || [ "$n" -gt 254 ]; then
    echo "netns.sh: N must be 1..254" >&2
    return 1
  fi
  netns__need_tools || return 1
  netns__vars "$name" "$n"
  netns_down "$name"
  local h=$NETNS_HOST_IF p=$NETNS_PEER_IF
  {
    ip netns add "$name" &&
      ip link add "$h" type veth peer name "$p" netns "$name" &&
      sysctl -qw "net.ipv6.conf.$h.disable_ipv6=1" &&
      sysctl -qw "net.ipv4.conf.$h.forwarding=0" &&
      sysctl -qw "net.ipv4.conf.$h.arp_ignore=8" &&
      ip netns exec "$name" sysctl -qw "net.ipv6.conf.$p.disable_ipv6=1" &&
      ip netns exec "$name" ip link set lo up &&
      ip netns exec "$name" ip addr add "$NETNS_PEER_IP/$NETNS_PREFIX" dev "$p" &&
      ethtool -K "$h" tx off rx off tso off gso off gro off >/dev/null 2>&1 &&
      ip netns exec "$name" ethtool -K "$p" tx off rx off tso off gso off gro off >/dev/null 2>&1 &&
      ip link set "$h" up &&
      ip netns exec "$name" ip link set "$p" up
  } || {
    echo "netns.sh: could not create namespace $name" >&2
    netns_down "$name"
    return 1
  }
  return 0
}

netns__print() {
  echo "NETNS_NAME=$NETNS_NAME"
  echo "NETNS_HOST_IF=$NETNS_HOST_IF"
  echo "NETNS_PEER_IF=$NETNS_PEER_IF"
  echo "NETNS_PEER_IP=$NETNS_PEER_IP"
  echo "NETNS_USTACK_IP=$NETNS_USTACK_IP"
  echo "NETNS_PREFIX=$NETNS_PREFIX"
  echo "NETNS_SUBNET=$NETNS_SUBNET"
}

# Run as a command (not sourced).
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  case ${1:-} in
    up) shift; netns_up "$@" && netns__print ;;
    down) shift; netns_down "$@" ;;
    *) echo "usage: $0 up NAME [N] | down NAME" >&2; exit 2 ;;
  esac
fi
