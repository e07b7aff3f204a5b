#!/usr/bin/env bash
# pg_regress over sql/*.sql on a temporary instance (wal_level=logical, library preloaded), run as
# the postgres user from a staging copy it can write to.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
source "$ROOT/test/lib/pg_cluster.sh"
cd "$ROOT"
tests=$(make -s -f - print-regress <<<'include Makefile
print-regress: ; @echo $(REGRESS)' 2>/dev/null)
[ -n "$tests" ] || { echo "no regression tests"; echo "0 passed, 1 failed"; exit 1; }
stage=$(mktemp -d /tmp/ps_regress.XXXXXX)
mkdir -p "$stage/test"
cp -r sql expected "$stage/"; cp test/pg_test.conf "$stage/test/"
[ "$(id -u)" = 0 ] && chown -R postgres: "$stage"
cd "$stage"
port=$(pg_free_port)
as_pg "$PG_BIN/../lib/pgxs/src/test/regress/pg_regress" --bindir="$PG_BIN" \
  --inputdir=. --outputdir=. --temp-instance=./tmp_check --temp-config=test/pg_test.conf \
  --port="$port" --dbname=contrib_regression $tests 2>&1 | tee regress.out
[ -f regression.diffs ] && head -c 20000 regression.diffs
pass=$(grep -cE '^(ok [0-9]+|test .* \.\.\. ok|     [a-z_0-9]+ +\.\.\. ok)' regress.out)
fail=$(grep -cE '^(not ok [0-9]+|test .* \.\.\. FAILED|     [a-z_0-9]+ +\.\.\. FAILED)' regress.out)
if [ "$pass" = 0 ] && [ "$fail" = 0 ]; then fail=1; fi
[ "$fail" = 0 ] && { cd /; rm -rf "$stage"; }
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
