#!/usr/bin/env bash
# Installs everything the build, the tests and the demo need, from Debian's packages (and, for the
# end-to-end tests, the npm registry). Idempotent; needs root (or sudo).
set -euo pipefail
SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  build-essential g++ make pkg-config ca-certificates curl openssl python3 \
  postgresql-15 postgresql-server-dev-15 postgresql-contrib libpq-dev \
  libyaml-cpp-dev nlohmann-json3-dev libssl-dev libgtest-dev \
  libboost-dev libboost-system-dev \
  clang-14 libclang-rt-14-dev libfuzzer-14-dev >/dev/null
# node + npm for the end-to-end client: keep a preinstalled node (e.g. NodeSource's, which bundles
# npm and conflicts with Debian's npm package); otherwise take Debian's.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
# clang++ for the fuzz targets
command -v clang++ >/dev/null || $SUDO ln -sf /usr/bin/clang++-14 /usr/local/bin/clang++
# End-to-end client (test/e2e): better-sqlite3 is compiled against the system's node headers
# (npm_config_nodedir=/usr). Debian ships them in libnode-dev; NodeSource's nodejs ships its own.
if [ ! -e /usr/include/node/node_api.h ]; then
  $SUDO apt-get install -y -qq --no-install-recommends libnode-dev node-gyp >/dev/null || true
fi
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
[ "$node_major" -ge 20 ] || echo "install_deps: node $(node --version 2>/dev/null) is older than 20: the end-to-end client suite will be skipped" >&2
