# Sourced by test scripts: a throw-away Postgres 15 cluster on a loopback port, run as the postgres
# user when we are root. Every cluster started here is stopped by the EXIT trap, even on failure.
#   pg_cluster_start DIR [PORT] [EXTRA_CONF]   initdb + start; exports PGHOST PGPORT PGUSER PGDATABASE
#   pg_cluster_stop DIR
#   as_pg CMD...                                run a command as the cluster owner
PG_BIN=${PG_BIN:-$(pg_config --bindir)}
PS_ROOT=${PS_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
_PG_CLUSTERS=()

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

pg_cluster_start() {
  local dir=$1 port=${2:-$(pg_free_port)} extra=${3:-}
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres: "$dir"
  as_pg "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log"; return 1; }
  cat "$PS_ROOT/test/pg_test.conf" >>"$dir/data/postgresql.conf"
  {
    echo "listen_addresses = '127.0.0.1'"
    echo "port = $port"
    echo "unix_socket_directories = '$dir'"
    echo "fsync = off"
    [ -n "$extra" ] && printf '%s\n' "$extra"
  } >>"$dir/data/postgresql.conf"
  [ "$(id -u)" = 0 ] && chown postgres: "$dir/data/postgresql.conf"
  _PG_CLUSTERS+=("$dir")
  as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null \
    || { cat "$dir/server.log"; return 1; }
  export PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres PGDATABASE=postgres
}

pg_cluster_stop() {
  local dir=$1
  [ -f "$dir/data/postmaster.pid" ] && as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1
  return 0
}

_pg_cluster_cleanup() {
  local d
  for d in "${_PG_CLUSTERS[@]}"; do pg_cluster_stop "$d"; done
}
trap _pg_cluster_cleanup EXIT
