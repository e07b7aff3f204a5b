#!/usr/bin/env bash
# Makes a private, relocated copy of the system's Postgres 15 under PREFIX so that several work
# trees can install and test their own build of the extension side by side:
#   bash test/lib/private_pg.sh /opt/pg-mine
#   PS_PG_PREFIX=/opt/pg-mine bash test/run_all.sh     # installs with DESTDIR, tests with its binaries
# Postgres finds its share/ and lib/ relative to its binaries, so the copy uses only its own files.
set -euo pipefail
prefix=${1:?usage: private_pg.sh PREFIX}
ver=15
if [ ! -x "$prefix/usr/lib/postgresql/$ver/bin/postgres" ]; then
  mkdir -p "$prefix/usr/lib/postgresql" "$prefix/usr/share/postgresql"
  cp -a "/usr/lib/postgresql/$ver" "$prefix/usr/lib/postgresql/"
  cp -a "/usr/share/postgresql/$ver" "$prefix/usr/share/postgresql/"
fi
echo "$prefix/usr/lib/postgresql/$ver/bin"
