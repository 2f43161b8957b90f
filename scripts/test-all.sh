#!/usr/bin/env bash
# The whole test suite, as CI runs it:
#   1. build, then `meson test`: unit, simulation and kernel interop tests
#      (interop tests need root and network namespaces; they skip otherwise);
#   2. the unit and simulation tests again in an ASan/UBSan build;
#      the shim's tests in a ThreadSanitizer build (only those are built);
#   3. every libFuzzer target for a few seconds (clang).
# Ends with the line "N passed, N failed, N skipped" and exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS=${FUZZ_SECONDS:-10}

./scripts/install-deps.sh || { echo "test-all: installing dependencies failed"; echo "0 passed, 1 failed"; exit 1; }

pass=0 fail=0 skip=0
tally() {  # adds the results in $1/meson-logs/testlog.json
  local counts
  counts=$(/usr/bin/python3 - "$1/meson-logs/testlog.json" <<'PY'
import json, sys
p = f = s = 0
try:
    for line in open(sys.argv[1]):
        r = json.loads(line).get("result", "")
        if r in ("OK", "EXPECTEDFAIL"): p += 1
        elif r == "SKIP": s += 1
        else: f += 1
except FileNotFoundError:
    f += 1
print(p, f, s)
PY
)
  read -r p f s <<<"$counts"
  pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
}

step() { echo; echo "=== $*"; }

step "build (build/)"
if ./scripts/build.sh build; then
  step "meson test (build/)"
  meson test -C build --print-errorlogs --num-processes 2
  tally build
else
  echo "test-all: build failed"; fail=$((fail + 1))
fi

step "ASan/UBSan build (build-asan/)"
if { [ -f build-asan/build.ninja ] || meson setup build-asan -Dsanitizers=address,undefined -Dbenchmarks=false >/dev/null; } \
   && ninja -C build-asan; then
  step "meson test --suite unit --suite sim (build-asan/)"
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} UBSAN_OPTIONS=print_stacktrace=1 \
    meson test -C build-asan --suite unit --suite sim --print-errorlogs --num-processes 2
  tally build-asan
else
  echo "test-all: sanitizer build failed"; fail=$((fail + 1))
fi

step "ThreadSanitizer build of the shim's tests (build-tsan/)"
# Only the shim's test binaries are built: the shim is where threads meet.
if { [ -f build-tsan/build.ninja ] || meson setup build-tsan -Dsanitizers=thread -Dbenchmarks=false \
       -Dinterop_tests=false >/dev/null; } \
   && ninja -C build-tsan test/unit/shim/shim-tests test/unit/shim/shim-tcp-tests; then
  step "meson test --suite tsan (build-tsan/)"
  TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1} \
    meson test -C build-tsan --no-rebuild --suite tsan --print-errorlogs --num-processes 2
  tally build-tsan
else
  echo "test-all: thread sanitizer build failed"; fail=$((fail + 1))
fi

step "fuzz targets, ${FUZZ_SECONDS}s each"
fuzz_out=$(mktemp)
./scripts/run-fuzz.sh "$FUZZ_SECONDS" 2>&1 | tee "$fuzz_out"
fp=$(grep -cE '^fuzz_[a-z_]+ +ok ' "$fuzz_out" || true)
ff=$(grep -cE '^fuzz_[a-z_]+ +FAILED ' "$fuzz_out" || true)
if [ "$fp" -eq 0 ] && [ "$ff" -eq 0 ]; then ff=1; echo "test-all: no fuzz target ran"; fi
pass=$((pass + fp)); fail=$((fail + ff))
rm -f "$fuzz_out"

echo
if [ "$skip" -gt 0 ]; then
  echo "$pass passed, $fail failed, $skip skipped"
else
  echo "$pass passed, $fail failed"
fi
[ "$fail" -eq 0 ]
