#!/usr/bin/env bash
# GoogleTest unit tests of the pure C++ core (and of the gateway, when built).
set -u
cd "$(dirname "$0")/../.."
pass=0 fail=0
BUILD=${BUILD:-build}
for bin in "$BUILD/unit_tests" "$BUILD/gateway_unit_tests"; do
  [ -x "$bin" ] || continue
  out=$("$bin" --gtest_brief=1 2>&1); echo "$out"
  p=$(echo "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -n1)
  f=$(echo "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -n1)
  [ -z "$p" ] && [ -z "$f" ] && f=1
  pass=$((pass + ${p:-0})); fail=$((fail + ${f:-0}))
done
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
