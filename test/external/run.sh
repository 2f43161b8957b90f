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

# Debian's dbus-1.pc (reached through libpcap) names -lsystemd for static
# links, but only libsystemd.so.0 is installed unless libsystemd-dev is: link
# against that (DPDK and libpcap are not linked statically against it either).
extra=""
if [ "$(${CXX:-c++} -print-file-name=libsystemd.so)" = "libsystemd.so" ]; then
  so=$(${CXX:-c++} -print-file-name=libsystemd.so.0)
  if [ "$so" != "libsystemd.so.0" ]; then
    mkdir -p "$tmp/lnk"
    ln -s "$so" "$tmp/lnk/libsystemd.so"
    extra="-L$tmp/lnk"
  fi
fi

cp "$src/test/external/Makefile" "$src/test/external/external.cpp" "$tmp/"
PKG_CONFIG_PATH="$pcdir" \
  make -s -C "$tmp" EXTRA_LDFLAGS="$extra"
out=$("$tmp/ustack-external" -l 0 --no-huge --no-pci -m 256 --no-shconf --file-prefix="ustack-ext-$$" \
      --vdev=net_null0 -- --ip 10.77.0.1/24 --shim-threads 2 2>&1) || { echo "$out"; echo "FAIL: ustack-external exited non-zero"; exit 1; }
echo "$out" | tail -n 5
echo "$out" | grep -q '^external: ok$' || { echo "FAIL: no 'external: ok'"; exit 1; }
echo "PASS"
