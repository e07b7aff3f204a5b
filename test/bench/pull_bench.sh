#!/usr/bin/env bash
# Runs the pull API benchmark (test/bench/pull_bench.cpp) on a temporary cluster:
#   PS_PG_PREFIX=/opt/pg-x BUILD=build-x bash test/bench/pull_bench.sh [ops] [page]
# (build first: make BUILD=... bench, and install the extension into the Postgres used.)
set -eu
PS_ROOT=$(cd "$(dirname "$0")/../.." && pwd)
[ -n "${PS_PG_PREFIX:-}" ] && PG_BIN=$(bash "$PS_ROOT/test/lib/private_pg.sh" "$PS_PG_PREFIX")
source "$PS_ROOT/test/lib/pg_cluster.sh"
dir=$(mktemp -d /tmp/ps_pullbench.XXXXXX)
pg_cluster_start "$dir" "" "shared_buffers = 256MB"
psql -X -q -c "CREATE EXTENSION powersync_pg"
"$PS_ROOT/${BUILD:-build}/bench/pull_bench" "host=$PGHOST port=$PGPORT user=postgres dbname=postgres" "${1:-1000000}" "${2:-10000}"
