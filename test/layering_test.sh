#!/usr/bin/env bash
# The architecture rule the build graph cannot enforce by itself: protocol
# code (src/core, src/wire, src/net, src/tcp, src/udp, src/igmp) never includes DPDK's ethdev or reads a
# clock. Fails listing the offending lines.
set -u
root=$1
bad=$(grep -rnE '#include <rte_(ethdev|cycles|timer)\.h>|rte_eth_|rte_rdtsc|clock_gettime|std::chrono::(steady|system)_clock' \
        "$root/src/core" "$root/src/wire" "$root/src/net" "$root/src/tcp" "$root/src/udp" "$root/src/igmp" 2>/dev/null)
if [ -n "$bad" ]; then
  echo "protocol code must not see ethdev or read a clock:"
  echo "$bad"
  exit 1
fi
echo "layering ok: src/core, src/wire, src/net, src/tcp, src/udp, src/igmp see no ethdev and read no clock"
