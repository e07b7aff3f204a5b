#!/usr/bin/env bash
# pg_isolation_regress over test/isolation/specs/*.spec (concurrent writers on IMMV base tables in
# READ COMMITTED, REPEATABLE READ and SERIALIZABLE) on a temporary instance, run as the postgres user
# from a staging copy it can write to.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
source "$ROOT/test/lib/pg_cluster.sh"
cd "$ROOT"
specs=$(cd test/isolation/specs && ls *.spec 2>/dev/null | sed 's/\.spec$//')
[ -n "$specs" ] || { echo "no isolation specs"; echo "0 passed, 1 failed"; exit 1; }
stage=$(mktemp -d /tmp/ps_isolation.XXXXXX)
mkdir -p "$stage/test"
cp -r test/isolation/specs test/isolation/expected "$stage/"
cp test/pg_test.conf "$stage/test/"
[ "$(id -u)" = 0 ] && chown -R postgres: "$stage"
cd "$stage"
port=$(pg_free_port)
as_pg "$PG_BIN/../lib/pgxs/src/test/isolation/pg_isolation_regress" --bindir="$PG_BIN" \
  --inputdir=. --outputdir=. --temp-instance=./tmp_check --temp-config=test/pg_test.conf \
  --port="$port" $specs 2>&1 | tee isolation.out
[ -f regression.diffs ] && head -c 20000 regression.diffs && echo
pass=$(grep -cE '^(ok [0-9]+|test .* \.\.\. ok|     [a-z_0-9-]+ +\.\.\. ok)' isolation.out)
fail=$(grep -cE '^(not ok [0-9]+|test .* \.\.\. FAILED|     [a-z_0-9-]+ +\.\.\. FAILED)' isolation.out)
if [ "$pass" = 0 ] && [ "$fail" = 0 ]; then fail=1; fi
[ "$fail" = 0 ] && { cd /; rm -rf "$stage"; }
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
