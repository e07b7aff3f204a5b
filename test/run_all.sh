#!/usr/bin/env bash
# Builds and installs everything, runs every suite in test/suites/ (in name order) and prints the
# closing line "N passed, M failed". Each suite prints its own "N passed, M failed" last; a suite
# that prints no such line counts as one failure.
#   SUITES="unit regress"   run only suites whose file name contains one of these words
#   PS_LONG=1               long variants (more random cases, more crash trials)
#   PS_PG_PREFIX=/opt/pg-x  install into and test with a private Postgres copy (test/lib/private_pg.sh)
#   BUILD=build-x           build directory (default build); suites find binaries through $BUILD
set -u
cd "$(dirname "$0")/.."
export BUILD=${BUILD:-build}
LOGDIR=${LOGDIR:-$BUILD/test-logs}
mkdir -p "$LOGDIR"
install_args=()
if [ -n "${PS_PG_PREFIX:-}" ]; then
  PG_BIN=$(bash test/lib/private_pg.sh "$PS_PG_PREFIX")
  export PG_BIN
  install_args=(DESTDIR="$PS_PG_PREFIX")
fi

echo "== build"
if ! make -j"$(nproc)" BUILD="$BUILD" all >"$LOGDIR/build.log" 2>&1 || ! make BUILD="$BUILD" install "${install_args[@]}" >>"$LOGDIR/build.log" 2>&1; then
  tail -n 60 "$LOGDIR/build.log"
  echo "0 passed, 1 failed"
  exit 1
fi

total_pass=0
total_fail=0
for suite in test/suites/*.sh; do
  name=$(basename "$suite" .sh)
  if [ -n "${SUITES:-}" ]; then
    selected=0
    for w in $SUITES; do case "$name" in *"$w"*) selected=1 ;; esac; done
    [ "$selected" = 1 ] || continue
  fi
  echo "== $name"
  start=$(date +%s)
  bash "$suite" >"$LOGDIR/$name.log" 2>&1
  rc=$?
  last=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$LOGDIR/$name.log" | tail -n 1)
  if [ -z "$last" ]; then
    tail -n 40 "$LOGDIR/$name.log"
    echo "$name: no result line (exit $rc): counted as 1 failure"
    total_fail=$((total_fail + 1))
    continue
  fi
  p=${last%% passed*}
  f=${last#*passed, }; f=${f%% failed*}
  if [ "$f" != 0 ] || [ "$rc" != 0 ]; then
    grep -E '^(FAIL|not ok|\[  FAILED  \])' "$LOGDIR/$name.log" | head -n 40
    [ "$f" = 0 ] && f=1
  fi
  echo "$name: $p passed, $f failed ($(( $(date +%s) - start ))s, log: $LOGDIR/$name.log)"
  total_pass=$((total_pass + p))
  total_fail=$((total_fail + f))
done
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" = 0 ]
