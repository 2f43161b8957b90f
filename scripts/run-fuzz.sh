#!/usr/bin/env bash
# Build the libFuzzer targets with clang and run each one for a while.
#
#   scripts/run-fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# SECONDS_PER_TARGET defaults to 10; TARGETs default to all of them. Each
# target starts from a scratch copy of its seed corpus (test/fuzz/corpus/<t>/
# is never written to), so new inputs found in a run can be reviewed and
# copied back by hand. Prints one line per target and exits non-zero if any
# target crashed, hung, leaked or failed to build.
#
# Environment:
#   FUZZ_BUILD_DIR  build directory (default: build-fuzz in the source tree)
#   FUZZ_WORK_DIR   scratch corpora, logs and crash inputs
#                   (default: test/fuzz/corpus-run, ignored by git)
#   JOBS            ninja parallelism (default: 2)
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
secs=${1:-10}
shift || true
if ! [[ $secs =~ ^[0-9]+$ ]] || [[ $secs -eq 0 ]]; then
  echo "usage: $0 [SECONDS_PER_TARGET] [TARGET...]" >&2
  exit 2
fi
all_targets=(fuzz_ethernet fuzz_arp fuzz_ipv4 fuzz_icmp fuzz_tcp fuzz_udp fuzz_igmp fuzz_stack fuzz_tls fuzz_tcp_conn)
if [[ $# -gt 0 ]]; then targets=("$@"); else targets=("${all_targets[@]}"); fi

build=${FUZZ_BUILD_DIR:-$root/build-fuzz}
work=${FUZZ_WORK_DIR:-$root/test/fuzz/corpus-run}

for tool in clang clang++ meson ninja; do
  command -v "$tool" >/dev/null || { echo "run-fuzz: $tool not found" >&2; exit 2; }
done

if [[ ! -f $build/build.ninja ]]; then
  CXX=clang++ CC=clang meson setup "$build" "$root" \
    -Dfuzzing=true -Dtests=false -Dbenchmarks=false >"$build.setup.log" 2>&1 || {
    echo "run-fuzz: meson setup failed, see $build.setup.log" >&2
    exit 2
  }
  rm -f "$build.setup.log"
fi
# Build only the fuzz targets: the rest of the tree is not needed here.
ninja_targets=()
for t in "${targets[@]}"; do ninja_targets+=("test/fuzz/$t"); done
if ! ninja -C "$build" -j "${JOBS:-2}" "${ninja_targets[@]}" >"$build/fuzz-build.log" 2>&1; then
  echo "run-fuzz: build failed, see $build/fuzz-build.log" >&2
  tail -n 30 "$build/fuzz-build.log" >&2
  exit 2
fi

mkdir -p "$work"
failed=0
for t in "${targets[@]}"; do
  exe=$build/test/fuzz/$t
  seeds=$root/test/fuzz/corpus/$t
  corpus=$work/$t
  artifacts=$work/artifacts/$t
  log=$work/$t.log
  rm -rf "$corpus"
  mkdir -p "$corpus" "$artifacts"
  [[ -d $seeds ]] && cp "$seeds"/* "$corpus"/ 2>/dev/null
  nseeds=$(find "$corpus" -type f | wc -l)

  # -timeout: an input that runs this long is a hang and fails the run.
  "$exe" -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "$corpus" >"$log" 2>&1
  rc=$?

  runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -n 1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
  ncorpus=$(find "$corpus" -type f | wc -l)
  if [[ $rc -eq 0 ]]; then
    printf '%-14s ok     %ss, %s runs, cov %s, corpus %s -> %s\n' \
      "$t" "$secs" "${runs:-?}" "${cov:-?}" "$nseeds" "$ncorpus"
  else
    failed=1
    crash=$(find "$artifacts" -type f -newer "$exe" | head -n 1)
    reason=$(grep -m1 -oE 'ERROR: (AddressSanitizer|UndefinedBehaviorSanitizer|LeakSanitizer|libFuzzer): [a-zA-Z-]+|runtime error: .*|deadly signal|timeout' "$log" | head -n 1)
    printf '%-14s FAILED exit %s: %s; input %s; log %s\n' \
      "$t" "$rc" "${reason:-see log}" "${crash:-none}" "$log"
  fi
done
exit $failed
