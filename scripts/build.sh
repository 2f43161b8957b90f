#!/usr/bin/env bash
# Configures (once) and builds ustack in ./build (or $1).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
[ -f "$dir/build.ninja" ] || meson setup "$dir" >/dev/null
ninja -C "$dir"
