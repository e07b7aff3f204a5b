#!/usr/bin/env bash
# Fuzzes the sync rules loader (YAML + SQL -> SyncRules::parse, then evaluating a row) with libFuzzer
# under ASan/UBSan for a bounded time. Prints "1 passed, 0 failed", or the crash input path.
#   FUZZ_SECONDS=60 (default), PS_LONG=1 -> 600 s
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
seconds=${FUZZ_SECONDS:-60}
[ -n "${PS_LONG:-}" ] && seconds=600
if ! command -v clang++ >/dev/null; then
  echo "clang++ not installed (test/install_deps.sh installs it)"
  echo "0 passed, 1 failed"; exit 1
fi
if ! make -s -j2 BUILD="$BUILD" fuzz >"$BUILD/fuzz-build.log" 2>&1; then
  tail -n 30 "$BUILD/fuzz-build.log"
  echo "0 passed, 1 failed"; exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp test/fuzz/corpus/rules_loader/* "$work/" 2>/dev/null
artifacts="$BUILD/fuzz/artifacts/"
mkdir -p "$artifacts"
"$BUILD/fuzz/rules_loader" "$work" -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
  -dict=test/fuzz/rules_loader.dict -artifact_prefix="$artifacts" -print_final_stats=1 >"$BUILD/fuzz.log" 2>&1
rc=$?
tail -n 15 "$BUILD/fuzz.log"
if [ "$rc" = 0 ]; then
  echo "1 passed, 0 failed"
else
  crash=$(grep -o "Test unit written to .*" "$BUILD/fuzz.log" | tail -n 1 | sed 's/Test unit written to //')
  echo "FAIL - fuzzer found a problem (exit $rc); input: ${crash:-unknown}; log: $BUILD/fuzz.log"
  echo "0 passed, 1 failed"; exit 1
fi
