#!/usr/bin/env bash
# The ustack demo: the Linux kernel in a network namespace talks to ustack.
#
#   sudo scripts/demo.sh [BUILD_DIR]        (default BUILD_DIR: build)
#
# 1. creates a namespace with a veth pair (scripts/netns.sh)
# 2. starts ustack on the near end through DPDK's net_af_packet PMD
# 3. the kernel resolves ustack by ARP (ip neigh) and pings it: normal,
#    large (1472-byte payload, a full 1500-byte packet, DF set), a burst
# 4. ustack pings the kernel (--ping) and prints each round trip
# 5. TCP: the kernel's nc through ustack's echo server (--tcp-echo), and
#    8 MiB from ustack's pattern source (--tcp-source) checked by SHA-256
# 6. prints ustack's stats (SIGUSR1), stops it with SIGINT, shows its JSON
# 7. client mode: ustack downloads 16 MiB from a kernel server (--tcp-get)
# Everything is removed on exit, also on failure. Exit status 0 only if every
# step worked.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
build=${1:-${BUILD:-$root/build}}
ustack=$build/apps/ustack
name=usdemo$$
name=${name:0:13}

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { printf '\033[31mdemo failed: %s\033[0m\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, AF_PACKET)"
[ -x "$ustack" ] || die "no $ustack: build first (meson setup build && ninja -C build)"
# shellcheck source=netns.sh
. "$here/netns.sh"

work=$(mktemp -d /tmp/ustack-demo.XXXXXX)
upid=
cleanup() {
  local rc=$?
  if [ -n "$upid" ] && kill -0 "$upid" 2>/dev/null; then
    kill -INT "$upid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$upid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$upid" 2>/dev/null || true
  fi
  netns_down "$name"
  rm -rf "/var/run/dpdk/ustack-demo-$$"
  if [ $rc -ne 0 ] && [ -s "$work/ustack.log" ]; then
    echo "--- ustack log (last 30 lines):"
    tail -n 30 "$work/ustack.log"
    echo "--- kept in $work"
  else
    rm -rf "$work"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

in_ns() { ip netns exec "$name" "$@"; }
peer_py=$root/test/interop/tcp_peer.py   # the kernel's side of the TCP steps
source_bytes=$((8 << 20))
get_bytes=$((16 << 20))
pattern_sha() { /usr/bin/python3 "$peer_py" pattern-sha256 "$1" | sed -n 's/.*"sha": "\([0-9a-f]*\)".*/\1/p'; }

# Waits up to $2 seconds for the regex $1 in ustack's log; prints the first match.
wait_log() {
  local i
  for i in $(seq $(($2 * 10))); do
    if grep -Eq "$1" "$work/ustack.log"; then
      grep -E "$1" "$work/ustack.log" | head -n 1
      return 0
    fi
    kill -0 "$upid" 2>/dev/null || die "ustack exited while waiting for /$1/"
    sleep 0.1
  done
  die "timed out waiting for /$1/ in ustack's log"
}

# Runs ping in the namespace, shows its summary, fails unless every reply came.
ping_all() {
  local out sent recv
  out=$(in_ns ping "$@" 2>&1) || true
  echo "$out" | tail -n 2
  sent=$(echo "$out" | sed -n 's/^\([0-9]*\) packets transmitted.*/\1/p')
  recv=$(echo "$out" | sed -n 's/.* \([0-9]*\) received.*/\1/p')
  [ -n "$sent" ] && [ "$sent" -gt 0 ] && [ "$sent" = "$recv" ] || die "ping $*: $recv of $sent replies"
}

step "namespace $name: kernel at the far end of a veth pair"
netns_up "$name" 1 || die "cannot create the namespace"
echo "root ns: $NETNS_HOST_IF (driven by ustack)   <-->   ns $name: $NETNS_PEER_IF $NETNS_PEER_IP/$NETNS_PREFIX (Linux)"

step "start ustack on $NETNS_HOST_IF as $NETNS_USTACK_IP"
"$ustack" "--vdev=net_af_packet0,iface=$NETNS_HOST_IF" "--file-prefix=ustack-demo-$$" -- \
  --ip "$NETNS_USTACK_IP/$NETNS_PREFIX" --ping "$NETNS_PEER_IP:5" \
  --tcp-echo 7 --tcp-source "19:$source_bytes" \
  --stats-json "$work/stats.json" >"$work/ustack.log" 2>&1 &
upid=$!
ready=$(wait_log '^ready: ' 30)
grep -E '^(EAL args|port )' "$work/ustack.log" || true
echo "$ready"
mac=$(echo "$ready" | sed -n 's/.* mac \([0-9a-f:]*\).*/\1/p')

step "the kernel resolves ustack by ARP"
in_ns ip neigh flush dev "$NETNS_PEER_IF" || true
ping_all -c 1 -W 2 "$NETNS_USTACK_IP"
neigh=$(in_ns ip neigh show "$NETNS_USTACK_IP" dev "$NETNS_PEER_IF")
echo "ip neigh: $neigh"
echo "$neigh" | grep -q "lladdr $mac" || die "the kernel's neighbour entry does not have ustack's MAC $mac"

step "the kernel pings ustack"
ping_all -c 5 -i 0.2 -W 2 "$NETNS_USTACK_IP"

step "large: 1472-byte payload, 1500-byte packets, don't fragment"
ping_all -c 5 -i 0.2 -W 2 -s 1472 -M do "$NETNS_USTACK_IP"

step "a quick burst: 200 pings 2 ms apart"
ping_all -q -c 200 -i 0.002 -W 2 "$NETNS_USTACK_IP"

step "ustack pings the kernel"
summary=$(wait_log "^ping $NETNS_PEER_IP: [0-9]+ sent" 20)
grep -E "^ping $NETNS_PEER_IP: seq=" "$work/ustack.log" || true
echo "$summary"
echo "$summary" | grep -q "5 sent, 5 received" || die "ustack's pings were not all answered"

step "TCP: the kernel's nc through ustack's echo server (port 7)"
line="hello from the Linux kernel's TCP"
got=$(printf '%s\n' "$line" | in_ns nc -N -w 5 "$NETNS_USTACK_IP" 7) || true
echo "sent: $line"
echo "back: $got"
[ "$got" = "$line" ] || die "the echo server did not send the line back"

step "TCP: the kernel fetches 8 MiB from ustack's pattern source (port 19)"
sha=$(in_ns nc -d -w 10 "$NETNS_USTACK_IP" 19 | sha256sum | cut -d' ' -f1)
want=$(pattern_sha "$source_bytes")
echo "received sha256 $sha"
echo "pattern  sha256 $want"
[ -n "$want" ] && [ "$sha" = "$want" ] || die "the source's bytes differ from the pattern"

step "ustack's stats (SIGUSR1)"
kill -USR1 "$upid"
wait_log '^stats t=' 10

step "stop ustack (SIGINT)"
kill -INT "$upid"
rc=0
wait "$upid" || rc=$?
upid=
tail -n 3 "$work/ustack.log"
[ "$rc" -eq 0 ] || die "ustack exited with status $rc"
[ -s "$work/stats.json" ] || die "no stats JSON"
/usr/bin/python3 - "$work/stats.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
t = d["totals"]
print("stats JSON: icmp_rx_echo_request=%d icmp_tx_echo_reply=%d arp_tx_reply=%d drops=%d port0 ipackets=%d opackets=%d"
      % (t["icmp_rx_echo_request"], t["icmp_tx_echo_reply"], t["arp_tx_reply"], d["drops"]["total"],
         d["ports"][0]["ipackets"], d["ports"][0]["opackets"]))
for s in d["tcp_services"]:
    print("  tcp %s port %d: %d connections, %d bytes in, %d bytes out"
          % (s["kind"], s["port"], s["connections"], s["bytes_in"], s["bytes_out"]))
PY

step "TCP client mode: ustack downloads 16 MiB from a kernel server"
in_ns /usr/bin/python3 "$peer_py" serve 5001 "$get_bytes" 1 >"$work/server.out" 2>&1 &
spid=$!
for _ in $(seq 50); do grep -q listening "$work/server.out" && break; sleep 0.1; done
rc=0
"$ustack" "--vdev=net_af_packet0,iface=$NETNS_HOST_IF" "--file-prefix=ustack-demo-$$" -- \
  --ip "$NETNS_USTACK_IP/$NETNS_PREFIX" --tcp-get "$NETNS_PEER_IP:5001:$get_bytes" >"$work/get.log" 2>&1 || rc=$?
wait "$spid" || true
grep -E '^tcp-get ' "$work/get.log" || true
[ "$rc" -eq 0 ] || die "ustack --tcp-get exited with status $rc"

step "demo passed"
