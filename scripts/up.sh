#!/usr/bin/env bash
# Installs what is missing, builds paddock, starts a whole platform on this
# host (`paddock up`: ZooKeeper, director, constructor, API, proxy, one
# allocator per zone) and opens the console. Arguments go to `paddock up`
# (e.g. --headless, --zones 3, --allocator-memory 4g).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
exec bin/paddock up "$@"
