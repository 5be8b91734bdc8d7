#!/usr/bin/env bash
# bench-proxy-https.sh: paddock's proxy over HTTPS (9243's listener,
# goroutine per connection, TLS 1.3) against plain HTTP (the event
# loops), same proxy process, same cores, keep-alive clients; and plain
# HTTP to a deployment with a traffic filter attached (the source check
# on every request). Requests/s are medians over RUNS rounds, each
# target once per round in turn.
#
# Usage: scripts/bench-proxy-https.sh [duration=10s] [connections=32]
# Env:   RUNS (default 5), PROCS (GOMAXPROCS of the proxy, default 2),
#        PROXY_CPU / LOAD_CPU (taskset lists, default 0,1 for both).
set -euo pipefail
DUR=${1:-10s}
CONNS=${2:-32}
RUNS=${RUNS:-5}
PROCS=${PROCS:-2}
PROXY_CPU=${PROXY_CPU:-0,1}
LOAD_CPU=${LOAD_CPU:-0,1}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/paddock-bench-https.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT
freeport() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1]);s.close()'; }
waitport() { for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }

ID=0123456789abcdef0123456789abcdef
FID=fedcba9876543210fedcba9876543210
BODY='{"name":"bench-node","cluster_name":"bench","version":{"number":"8.17.0"},"tagline":"You Know, for Search"}'
BPORT=$(freeport); HPORT=$(freeport); SPORT=$(freeport)
(cd "$ROOT" && CGO_ENABLED=0 go build -o "$WORK/paddock" .)

mkdir -p "$WORK/backend"
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
  server { listen 127.0.0.1:$BPORT; location / { default_type application/json; return 200 '$BODY'; } }
}
CONF
taskset -c "$LOAD_CPU" nginx -c "$WORK/backend/nginx.conf" -p "$WORK/backend" &
PIDS+=($!)

# The listener's certificate: a platform-style CA and a host certificate.
"$WORK/paddock" tunnel cert --ca-dir "$WORK/pki" --role proxy --id p1 --dns "$ID.localhost" >/dev/null
BE='[{"instance_id":"bench-1","kind":"elasticsearch","allocator":"a1","zone":"zone-1","address":"127.0.0.1:'$BPORT'"}]'
cat >"$WORK/routes.json" <<JSON
{"source":"disk","allocators":{},
 "routes":{"$ID":{"deployment_id":"$ID","state":"live","generation":1,"backends":$BE},
           "$FID":{"deployment_id":"$FID","state":"live","generation":1,"backends":$BE}},
 "filters":{"f1":{"id":"f1","name":"bench","type":"ip","rules":[
   {"source":"10.0.0.0/8"},{"source":"192.168.0.0/16"},{"source":"172.16.0.0/12"},{"source":"127.0.0.0/8"}],
   "associations":[{"entity_type":"deployment","id":"$FID"}]}}}
JSON
GOMAXPROCS=$PROCS taskset -c "$PROXY_CPU" "$WORK/paddock" proxy --routes-file "$WORK/routes.json" \
	--http-addr "127.0.0.1:$HPORT" --https-addr "127.0.0.1:$SPORT" \
	--tls-cert "$WORK/pki/proxy-p1.crt" --tls-key "$WORK/pki/proxy-p1.key" \
	--access-log "" --log-level warn --state-dir "$WORK/state" &
PIDS+=($!)
waitport "$BPORT"; waitport "$HPORT"; waitport "$SPORT"

declare -A URL HOST
URL[http]="http://127.0.0.1:$HPORT/"; HOST[http]=$ID
URL[https]="https://127.0.0.1:$SPORT/"; HOST[https]=$ID
URL[http-filtered]="http://127.0.0.1:$HPORT/"; HOST[http-filtered]=$FID
for t in http https http-filtered; do
	code=$(curl -sk -o /dev/null -w '%{http_code}' -H "Host: ${HOST[$t]}.localhost" "${URL[$t]}")
	[ "$code" = 200 ] || { echo "$t answers $code, not 200" >&2; exit 1; }
done
declare -A RES
for r in $(seq "$RUNS"); do
	for t in http https http-filtered; do
		rps=$(taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"$DUR" -H "Host: ${HOST[$t]}.localhost" "${URL[$t]}" | awk '/Requests\/sec/ {print int($2)}')
		RES[$t]+="$rps "
		echo "round $r $t $rps req/s" >&2
	done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
H=$(echo "${RES[http]}" | median); S=$(echo "${RES[https]}" | median); F=$(echo "${RES[http-filtered]}" | median)
printf "%-14s %8s  %s\n" target "req/s" "rounds"
printf "%-14s %8d  %s\n" http "$H" "${RES[http]}" https "$S" "${RES[https]}" http-filtered "$F" "${RES[http-filtered]}"
awk -v h="$H" -v s="$S" -v f="$F" 'BEGIN {printf "https/http %.2f   filtered/http %.2f\n", s/h, f/h}'
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)"
