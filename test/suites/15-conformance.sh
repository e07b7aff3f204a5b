#!/usr/bin/env bash
# Conformance suite: data-driven sync rules cases (test/conformance/cases/*.yaml, format in
# test/conformance/README.md) run by $(BUILD)/conformance. Prints "N passed, M failed".
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
if [ ! -x "$BUILD/conformance" ]; then
  make -s BUILD="$BUILD" "$BUILD/conformance" >/dev/null || { echo "0 passed, 1 failed"; exit 1; }
fi
"$BUILD/conformance"
