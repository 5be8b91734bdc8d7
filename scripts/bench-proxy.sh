#!/usr/bin/env bash
# bench-proxy.sh: requests/s and latency of one backend reached directly,
# through the paddock proxy and through nginx as the equivalent reverse
# proxy (keep-alive upstream), in one run, with the ratios.
#
# Usage: scripts/bench-proxy.sh [duration=10s] [connections=32]
# Env:   PROXY_CPU (core for the proxy under test, default 1),
#        LOAD_CPU (core for wrk and the backend, default 0),
#        ACCESS_LOG=on|off (both proxies log each request; default on).
# Equal worker cores: paddock runs with GOMAXPROCS=1, nginx with
# worker_processes 1, each pinned to PROXY_CPU.
set -euo pipefail
DUR=${1:-10s}
CONNS=${2:-32}
PROXY_CPU=${PROXY_CPU:-1}
LOAD_CPU=${LOAD_CPU:-0}
ACCESS_LOG=${ACCESS_LOG:-on}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/paddock-bench-proxy.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT

freeport() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1]);s.close()'; }
waitport() { for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }

BPORT=$(freeport); NPORT=$(freeport); PPORT=$(freeport)
ID=0123456789abcdef0123456789abcdef
BODY='{"name":"bench-node","cluster_name":"bench","cluster_uuid":"bench","version":{"number":"8.17.0"},"tagline":"You Know, for Search"}'

echo "building paddock" >&2
(cd "$ROOT" && CGO_ENABLED=0 go build -o "$WORK/paddock" .)

# Backend: a static JSON answer from nginx (one worker on the load core).
mkdir -p "$WORK/backend" "$WORK/nginx"
cat >"$WORK/backend/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $WORK/backend/nginx.pid;
error_log $WORK/backend/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  server {
    listen 127.0.0.1:$BPORT;
    location / { default_type application/json; return 200 '$BODY'; }
  }
}
CONF
taskset -c "$LOAD_CPU" nginx -c "$WORK/backend/nginx.conf" -p "$WORK/backend" &
PIDS+=($!)

if [ "$ACCESS_LOG" = on ]; then NGLOG="access_log $WORK/nginx/access.log combined buffer=64k flush=1s;"; PLOG="$WORK/paddock-access.log"; else NGLOG="access_log off;"; PLOG=""; fi
cat >"$WORK/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
  $NGLOG
  keepalive_requests 10000000;
  upstream backend { server 127.0.0.1:$BPORT; keepalive 128; }
  server {
    listen 127.0.0.1:$NPORT;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    }
  }
}
CONF
taskset -c "$PROXY_CPU" nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" &
PIDS+=($!)

cat >"$WORK/routes.json" <<JSON
{"source":"disk","routes":{"$ID":{"deployment_id":"$ID","state":"live","generation":1,
 "backends":[{"instance_id":"bench-1","kind":"elasticsearch","allocator":"a1","zone":"zone-1","address":"127.0.0.1:$BPORT"}]}},
 "allocators":{}}
JSON
GOMAXPROCS=1 taskset -c "$PROXY_CPU" "$WORK/paddock" proxy --routes-file "$WORK/routes.json" \
	--http-addr "127.0.0.1:$PPORT" --https-addr "" --access-log "$PLOG" --log-level warn \
	--metrics-addr "127.0.0.1:$(freeport)" --state-dir "$WORK/state" &
PIDS+=($!)
waitport "$BPORT"; waitport "$NPORT"; waitport "$PPORT"
curl -fsS -H "Host: $ID.localhost" "http://127.0.0.1:$PPORT/" >/dev/null

run() { # name url [header]
	local name=$1 url=$2 hdr=${3:-}
	local args=(-t1 -c"$CONNS" -d"$DUR" --latency)
	[ -n "$hdr" ] && args+=(-H "$hdr")
	taskset -c "$LOAD_CPU" wrk "${args[@]}" "$url" >/dev/null 2>&1 || true # warm-up pass discarded below
	taskset -c "$LOAD_CPU" wrk "${args[@]}" "$url" >"$WORK/$name.txt"
	local rps p50 p99
	rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/$name.txt")
	p50=$(awk '$1=="50%" {print $2}' "$WORK/$name.txt")
	p99=$(awk '$1=="99%" {print $2}' "$WORK/$name.txt")
	printf '%-8s %12s %10s %10s\n' "$name" "$rps" "$p50" "$p99"
	echo "$rps" >"$WORK/$name.rps"
}
echo "wrk -t1 -c$CONNS -d$DUR; proxies on cpu $PROXY_CPU, wrk and backend on cpu $LOAD_CPU; access log $ACCESS_LOG; $(nproc) cores"
printf '%-8s %12s %10s %10s\n' target "req/s" p50 p99
run direct "http://127.0.0.1:$BPORT/"
run nginx "http://127.0.0.1:$NPORT/" "Host: $ID.localhost"
run paddock "http://127.0.0.1:$PPORT/" "Host: $ID.localhost"
python3 - "$WORK" <<'PY'
import sys
w = sys.argv[1]
r = {n: float(open(f"{w}/{n}.rps").read()) for n in ("direct", "nginx", "paddock")}
print(f"paddock/nginx {r['paddock']/r['nginx']:.2f}x   paddock/direct {r['paddock']/r['direct']:.2f}x   nginx/direct {r['nginx']/r['direct']:.2f}x")
PY
