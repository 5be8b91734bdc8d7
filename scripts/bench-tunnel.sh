#!/usr/bin/env bash
# bench-tunnel.sh — paddock's TLS tunnel against stunnel4, in one run, on
# this machine: bulk throughput (one stream through a client+server pair)
# and handshakes per second (new connection, 1-byte echo, close), as
# ratios paddock/stunnel. Both chains use the same ECDSA P-256
# certificates, mutual TLS and role checks.
#
#   scripts/bench-tunnel.sh [duration=5s] [rounds=3] [handshake-concurrency=8]
#
# Needs stunnel4 (apt-get install stunnel4). Prints a markdown table for
# docs/benchmarks.md ("## Tunnel").
set -euo pipefail
DUR=${1:-5s}
ROUNDS=${2:-3}
HSCONC=${3:-8}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
STUNNEL=$(command -v stunnel4 || command -v stunnel || true)
[ -n "$STUNNEL" ] || { echo "stunnel4 not found: apt-get install stunnel4" >&2; exit 1; }

WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

( cd "$ROOT" && CGO_ENABLED=0 go build -o "$WORK/paddock" . )
P="$WORK/paddock"
export PADDOCK_HOME="$WORK/home"
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

$P tunnel cert --ca-dir "$WORK/pki" --role director --id bench-server >/dev/null
$P tunnel cert --ca-dir "$WORK/pki" --role proxy --id bench-client >/dev/null
SC="$WORK/pki/director-bench-server.crt"; SK="$WORK/pki/director-bench-server.key"
CC="$WORK/pki/proxy-bench-client.crt"; CK="$WORK/pki/proxy-bench-client.key"
CA="$WORK/pki/ca.pem"

# paddock chain: client (plain in) -> server (TLS in) -> sink
P_SRV=$(port); P_CLI=$(port); P_SINK=$(port)
$P tunnel server --log-level warn --listen 127.0.0.1:$P_SRV --target 127.0.0.1:$P_SINK \
  --cert "$SC" --key "$SK" --ca "$CA" --allow role:proxy --reload-interval 0 & PIDS+=($!)
$P tunnel client --log-level warn --listen 127.0.0.1:$P_CLI --connect 127.0.0.1:$P_SRV \
  --cert "$CC" --key "$CK" --ca "$CA" --allow role:director --reload-interval 0 & PIDS+=($!)

# stunnel chain, configured by `paddock tunnel config`
S_SRV=$(port); S_CLI=$(port); S_SINK=$(port)
$P tunnel config --mode server --foreground --name srv --listen 127.0.0.1:$S_SRV --target 127.0.0.1:$S_SINK \
  --cert "$SC" --key "$SK" --ca "$CA" --allow role:proxy | sed 's/^debug = 5/debug = 3/' > "$WORK/srv.conf"
$P tunnel config --mode client --foreground --name cli --listen 127.0.0.1:$S_CLI --connect 127.0.0.1:$S_SRV \
  --cert "$CC" --key "$CK" --ca "$CA" --allow role:director | sed 's/^debug = 5/debug = 3/' > "$WORK/cli.conf"
"$STUNNEL" "$WORK/srv.conf" 2>"$WORK/srv.log" & PIDS+=($!)
"$STUNNEL" "$WORK/cli.conf" 2>"$WORK/cli.log" & PIDS+=($!)

run() { # mode conc connect sink -> number
  local out
  out=$($P tunnel bench -o json --mode "$1" --concurrency "$2" --duration "$DUR" --connect 127.0.0.1:$3 --sink 127.0.0.1:$4)
  if [ "$1" = bulk ]; then echo "$out" | python3 -c 'import json,sys;print("%.1f"%json.load(sys.stdin)["mb_per_second"])'
  else echo "$out" | python3 -c 'import json,sys;print("%.0f"%json.load(sys.stdin)["connections_per_second"])'; fi
}
best() { python3 -c 'import sys;print(max(float(x) for x in sys.argv[1:]))' "$@"; }

PB=(); SB=(); PH=(); SH=()
for r in $(seq 1 "$ROUNDS"); do
  PB+=("$(run bulk 1 $P_CLI $P_SINK)"); SB+=("$(run bulk 1 $S_CLI $S_SINK)")
  PH+=("$(run handshake "$HSCONC" $P_CLI $P_SINK)"); SH+=("$(run handshake "$HSCONC" $S_CLI $S_SINK)")
  echo "round $r: bulk paddock ${PB[-1]} MB/s, stunnel ${SB[-1]} MB/s; handshakes paddock ${PH[-1]}/s, stunnel ${SH[-1]}/s" >&2
done
pb=$(best "${PB[@]}"); sb=$(best "${SB[@]}"); ph=$(best "${PH[@]}"); sh=$(best "${SH[@]}")
ratio() { python3 -c 'import sys;print("%.2f"%(float(sys.argv[1])/float(sys.argv[2])))' "$1" "$2"; }
echo
echo "machine: $(nproc) cores, $(uname -m), $("$STUNNEL" -version 2>&1 | grep -m1 '^stunnel' | cut -d' ' -f1-2), $(go version | cut -d' ' -f3); best of $ROUNDS rounds of $DUR"
echo
echo "| test | paddock tunnel | stunnel4 | ratio |"
echo "|---|---|---|---|"
echo "| bulk, 1 stream (MB/s) | $pb | $sb | $(ratio "$pb" "$sb")× |"
echo "| handshakes/s, $HSCONC workers | $ph | $sh | $(ratio "$ph" "$sh")× |"
