#!/usr/bin/env bash
# Installs what ustack needs on Debian 12, all from Debian's packages.
# Idempotent: does nothing (no apt-get update) when everything is present.
set -euo pipefail

pkgs=(
  # build
  meson ninja-build pkgconf g++ clang libclang-rt-14-dev
  # libraries
  dpdk dpdk-dev libdpdk-dev libpcap-dev libssl-dev catch2
  # a static link against libustack.a: libpcap's pkg-config names -lsystemd
  libsystemd-dev
  # kernel peer, captures, crafted packets
  iproute2 iputils-ping ethtool tshark wireshark-common tcpdump python3 python3-scapy netcat-openbsd curl socat
  # TLS interop peers (openssl s_server/s_client come with openssl)
  openssl gnutls-bin
)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: everything is installed"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
