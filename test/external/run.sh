#!/bin/sh
# The `install` test: `meson install` into a temporary directory, build
# test/external/ there with only `pkg-config --cflags --libs --static ustack`
# (its own Makefile, outside the main build), run it.
#   run.sh BUILD_DIR SOURCE_DIR
set -eu
build=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; rm -rf "/var/run/dpdk/ustack-ext-$$" "${XDG_RUNTIME_DIR:-/tmp}/dpdk/ustack-ext-$$" "/tmp/dpdk/ustack-ext-$$"' EXIT

if [ "$(nproc)" -lt 2 ]; then
  echo "SKIP: needs two CPUs (one lcore, one for the application)"
  exit 77
fi

meson install -C "$build" --destdir "$tmp/root" --no-rebuild --tags devel --quiet
pcdir=$(dirname "$(find "$tmp/root" -name ustack.pc | head -n 1)")
[ -f "$pcdir/ustack.pc" ] || { echo "FAIL: no ustack.pc installed"; exit 1; }
for h in process.hpp shim.hpp tcp.hpp addr.hpp stats.hpp; do
  [ -n "$(find "$tmp/root" -path "*/include/ustack/$h")" ] || { echo "FAIL: ustack/$h not installed"; exit 1; }
done

# Only pkg-config's answer links it: Debian's libpcap names -lsystemd for a
# static link, which scripts/install-deps.sh provides (libsystemd-dev).
cp "$src/test/external/Makefile" "$src/test/external/external.cpp" "$tmp/"
PKG_CONFIG_PATH="$pcdir" \
  make -s -C "$tmp"
out=$("$tmp/ustack-external" -l 0 --no-huge --no-pci -m 256 --no-shconf --file-prefix="ustack-ext-$$" \
      --vdev=net_null0 -- --ip 10.77.0.1/24 --shim-threads 2 2>&1) || { echo "$out"; echo "FAIL: ustack-external exited non-zero"; exit 1; }
echo "$out" | tail -n 5
echo "$out" | grep -q '^external: ok$' || { echo "FAIL: no 'external: ok'"; exit 1; }
echo "PASS"
