#!/usr/bin/env bash
# Local ZooKeeper (Debian's package) on loopback, standalone or ensemble.
#   scripts/zk.sh start [--ensemble 3] [--dir DIR] [--port 2181]
#   scripts/zk.sh stop|status [--dir DIR]
# It runs `paddock zookeeper`, which writes fresh configuration (own data
# dirs, myid, 4lw ruok,srvr,mntr, admin server off, reconfigEnabled with a
# dynamic config file for ensembles) and waits until every server serves.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x bin/paddock ] && [ -z "$(find . -name '*.go' -newer bin/paddock -print -quit)" ] || scripts/build.sh
exec bin/paddock zookeeper "$@"
