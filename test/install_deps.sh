#!/usr/bin/env bash
# Installs everything the build, the tests and the demo need, from Debian's packages (and, for the
# end-to-end tests, the npm registry). Idempotent; needs root (or sudo).
set -euo pipefail
SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  build-essential g++ make pkg-config ca-certificates curl python3 \
  postgresql-15 postgresql-server-dev-15 postgresql-contrib libpq-dev \
  libyaml-cpp-dev nlohmann-json3-dev libssl-dev libgtest-dev \
  libboost-dev libboost-system-dev \
  clang-14 libclang-rt-14-dev libfuzzer-14-dev \
  nodejs npm >/dev/null
# clang++ for the fuzz targets
command -v clang++ >/dev/null || $SUDO ln -sf /usr/bin/clang++-14 /usr/local/bin/clang++
