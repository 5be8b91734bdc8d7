#!/usr/bin/env bash
# bench-proxy.sh: requests/s and latency of one backend reached directly,
# through the paddock proxy and through nginx as the equivalent reverse
# proxy (keep-alive upstream), in one run, with the ratios.
#
# Usage: scripts/bench-proxy.sh [duration=10s] [connections=32]
# Env:   RUNS (rounds of direct/nginx/paddock, alternating; medians are
#        reported; default 3),
#        PROXY_CPU / LOAD_CPU (taskset lists for the proxy under test and
#        for wrk + backend; default 0,1 for both: on 2 cores, pinning
#        wrk and the backend to one core starves them),
#        ACCESS_LOG=on|off (both proxies log each request; default on).
# Equal worker cores: paddock runs with GOMAXPROCS=1, nginx with
# worker_processes 1.
#
# TLS=on (default) adds the second row, proxy to node over mutual TLS as
# on a platform: the backend sits behind `paddock tunnel server` (the
# allocator's :9400 end: allocator certificate, admits proxy
# certificates only); paddock dials it as a tls backend with its proxy
# certificate (--backend-cert/--backend-key/--backend-ca, SNI
# bench-1.node.paddock), nginx with proxy_ssl_certificate(_key),
# proxy_ssl_trusted_certificate + proxy_ssl_verify on, proxy_ssl_server_name
# with the same SNI, a keep-alive upstream and proxy_ssl_session_reuse.
# The allocator certificate carries bench-1.node.paddock as a DNS SAN so
# that nginx can verify it by name (paddock verifies by role).
#
# Then latency at half of saturation: agents/proxy/internal/ratebench
# sends at a fixed rate (half the lower of nginx's and paddock's median
# req/s) to each target; added latency = target - direct.
set -euo pipefail
DUR=${1:-10s}
CONNS=${2:-32}
PROXY_CPU=${PROXY_CPU:-0,1}
LOAD_CPU=${LOAD_CPU:-0,1}
RUNS=${RUNS:-3}
ACCESS_LOG=${ACCESS_LOG:-on}
TLS=${TLS:-on}
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

BPORT=$(freeport); NPORT=$(freeport); PPORT=$(freeport); TPORT=$(freeport); NTPORT=$(freeport); TMPORT=$(freeport)
ID=0123456789abcdef0123456789abcdef
TID=fedcba9876543210fedcba9876543210
SNI=bench-1.node.paddock
BODY='{"name":"bench-node","cluster_name":"bench","cluster_uuid":"bench","version":{"number":"8.17.0"},"tagline":"You Know, for Search"}'

echo "building paddock" >&2
(cd "$ROOT" && CGO_ENABLED=0 go build -o "$WORK/paddock" . && go build -o "$WORK/ratebench" ./agents/proxy/internal/ratebench)

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
declare -A PIDOF
PIDOF[direct]=$!

TARGETS=(direct nginx paddock)
NGTLS=""
if [ "$TLS" = on ]; then
	TARGETS+=(nginx-tls paddock-tls)
	PKI="$WORK/pki"
	"$WORK/paddock" tunnel cert --ca-dir "$PKI" --role allocator --id a1 --dns "$SNI" >/dev/null
	"$WORK/paddock" tunnel cert --ca-dir "$PKI" --role proxy --id p1 >/dev/null
	# The allocator's node tunnel in front of the backend (load cores).
	taskset -c "$LOAD_CPU" "$WORK/paddock" tunnel server --name nodes --listen "127.0.0.1:$TPORT" --target "127.0.0.1:$BPORT" \
		--cert "$PKI/allocator-a1.crt" --key "$PKI/allocator-a1.key" --ca "$PKI/ca.pem" --allow role:proxy --log-level error \
		--metrics-addr "127.0.0.1:$TMPORT" &
	PIDS+=($!)
	NGTLS="
  upstream backend_tls { server 127.0.0.1:$TPORT; keepalive 128; }
  server {
    listen 127.0.0.1:$NTPORT;
    location / {
      proxy_pass https://backend_tls;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_ssl_certificate $PKI/proxy-p1.crt;
      proxy_ssl_certificate_key $PKI/proxy-p1.key;
      proxy_ssl_trusted_certificate $PKI/ca.pem;
      proxy_ssl_verify on;
      proxy_ssl_verify_depth 2;
      proxy_ssl_server_name on;
      proxy_ssl_name $SNI;
      proxy_ssl_session_reuse on;
      proxy_ssl_protocols TLSv1.2 TLSv1.3;
    }
  }"
fi

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
  $NGTLS
}
CONF
taskset -c "$PROXY_CPU" nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" &
PIDS+=($!)
PIDOF[nginx]=$!
PIDOF[nginx-tls]=$!

cat >"$WORK/routes.json" <<JSON
{"source":"disk","routes":{"$ID":{"deployment_id":"$ID","state":"live","generation":1,
 "backends":[{"instance_id":"bench-1","kind":"elasticsearch","allocator":"a1","zone":"zone-1","address":"127.0.0.1:$BPORT"}]},
 "$TID":{"deployment_id":"$TID","state":"live","generation":1,
 "backends":[{"instance_id":"bench-1","kind":"elasticsearch","allocator":"a1","zone":"zone-1","address":"127.0.0.1:$TPORT","tls":true}]}},
 "allocators":{}}
JSON
BACKEND_TLS=()
[ "$TLS" = on ] && BACKEND_TLS=(--backend-cert "$PKI/proxy-p1.crt" --backend-key "$PKI/proxy-p1.key" --backend-ca "$PKI/ca.pem")
GOMAXPROCS=1 taskset -c "$PROXY_CPU" "$WORK/paddock" proxy --routes-file "$WORK/routes.json" \
	--http-addr "127.0.0.1:$PPORT" --https-addr "" --access-log "$PLOG" --log-level warn \
	--metrics-addr "127.0.0.1:$(freeport)" --state-dir "$WORK/state" "${BACKEND_TLS[@]}" &
PIDS+=($!)
PIDOF[paddock]=$!
PIDOF[paddock-tls]=$!
waitport "$BPORT"; waitport "$NPORT"; waitport "$PPORT"
curl -fsS -H "Host: $ID.localhost" "http://127.0.0.1:$PPORT/" >/dev/null
if [ "$TLS" = on ]; then
	waitport "$TPORT"; waitport "$NTPORT"
	curl -fsS -H "Host: $TID.localhost" "http://127.0.0.1:$PPORT/" | grep -q bench-node
	curl -fsS -H "Host: $TID.localhost" "http://127.0.0.1:$NTPORT/" | grep -q bench-node
fi

# cputicks PID: user+system clock ticks of PID and its children (the
# nginx worker), so CPU per request can be compared even when other
# work shares the machine.
cputicks() {
	local t=0 p
	for p in $1 $(pgrep -P "$1" || true); do
		t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
	done
	echo "$t"
}
run() { # name round url [header]
	local name=$1 round=$2 url=$3 hdr=${4:-}
	local args=(-t1 -c"$CONNS" -d"$DUR" --latency)
	[ -n "$hdr" ] && args+=(-H "$hdr")
	local pid=${PIDOF[$name]} t0 t1
	t0=$(cputicks "$pid")
	taskset -c "$LOAD_CPU" wrk "${args[@]}" "$url" >"$WORK/$name.$round.txt"
	t1=$(cputicks "$pid")
	local rps p50 p99 n cpu
	rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/$name.$round.txt")
	n=$(awk '/requests in/ {print $1}' "$WORK/$name.$round.txt")
	p50=$(awk '$1=="50%" {print $2}' "$WORK/$name.$round.txt")
	p99=$(awk '$1=="99%" {print $2}' "$WORK/$name.$round.txt")
	cpu=$(python3 -c "print(f'{($t1-$t0)/$(getconf CLK_TCK)*1e6/$n:.1f}')")
	printf '%-11s %5s %12s %10s %10s %12s\n' "$name" "$round" "$rps" "$p50" "$p99" "$cpu"
	echo "$rps" >>"$WORK/$name.rps"
	echo "$cpu" >>"$WORK/$name.cpu"
}
echo "wrk -t1 -c$CONNS -d$DUR, $RUNS rounds; proxies on cpus $PROXY_CPU, wrk and backend on cpus $LOAD_CPU; access log $ACCESS_LOG; $(nproc) cores; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
# Warm-up (connections, JIT-free but caches and pools).
for u in "http://127.0.0.1:$BPORT/" "http://127.0.0.1:$NPORT/" "http://127.0.0.1:$PPORT/"; do
	wrk -t1 -c"$CONNS" -d2s -H "Host: $ID.localhost" "$u" >/dev/null
done
if [ "$TLS" = on ]; then
	for u in "http://127.0.0.1:$NTPORT/" "http://127.0.0.1:$PPORT/"; do
		wrk -t1 -c"$CONNS" -d2s -H "Host: $TID.localhost" "$u" >/dev/null
	done
fi
printf '%-11s %5s %12s %10s %10s %12s\n' target round "req/s" p50 p99 "cpu-us/req"
for r in $(seq "$RUNS"); do
	run direct "$r" "http://127.0.0.1:$BPORT/"
	# Alternate the order of the two proxies from round to round.
	if [ $((r % 2)) = 1 ]; then
		run nginx "$r" "http://127.0.0.1:$NPORT/" "Host: $ID.localhost"
		run paddock "$r" "http://127.0.0.1:$PPORT/" "Host: $ID.localhost"
	else
		run paddock "$r" "http://127.0.0.1:$PPORT/" "Host: $ID.localhost"
		run nginx "$r" "http://127.0.0.1:$NPORT/" "Host: $ID.localhost"
	fi
	if [ "$TLS" = on ]; then
		if [ $((r % 2)) = 1 ]; then
			run nginx-tls "$r" "http://127.0.0.1:$NTPORT/" "Host: $TID.localhost"
			run paddock-tls "$r" "http://127.0.0.1:$PPORT/" "Host: $TID.localhost"
		else
			run paddock-tls "$r" "http://127.0.0.1:$PPORT/" "Host: $TID.localhost"
			run nginx-tls "$r" "http://127.0.0.1:$NTPORT/" "Host: $TID.localhost"
		fi
	fi
done
RATES=$(python3 - "$WORK" "${TARGETS[@]}" <<'PY'
import sys, statistics
w, names = sys.argv[1], sys.argv[2:]
r = {n: statistics.median(float(x) for x in open(f"{w}/{n}.rps").read().split()) for n in names}
c = {n: statistics.median(float(x) for x in open(f"{w}/{n}.cpu").read().split()) for n in names}
print(f"median cpu-us/request (process user+sys): backend {c['direct']:.1f}  nginx {c['nginx']:.1f}  paddock {c['paddock']:.1f}  nginx/paddock {c['nginx']/c['paddock']:.2f}x", file=sys.stderr)
print(f"median req/s: direct {r['direct']:.0f}  nginx {r['nginx']:.0f}  paddock {r['paddock']:.0f}", file=sys.stderr)
print(f"paddock/nginx {r['paddock']/r['nginx']:.2f}x   paddock/direct {r['paddock']/r['direct']:.2f}x   nginx/direct {r['nginx']/r['direct']:.2f}x", file=sys.stderr)
rate = int(min(r['nginx'], r['paddock']) / 2)
if "paddock-tls" in r:
    print(f"mTLS to the node: median req/s nginx {r['nginx-tls']:.0f}  paddock {r['paddock-tls']:.0f}  paddock/nginx {r['paddock-tls']/r['nginx-tls']:.2f}x   "
          f"cpu-us/req nginx {c['nginx-tls']:.1f}  paddock {c['paddock-tls']:.1f}  nginx/paddock {c['nginx-tls']/c['paddock-tls']:.2f}x", file=sys.stderr)
    print(rate, int(min(r['nginx-tls'], r['paddock-tls']) / 2))
else:
    print(rate, 0)
PY
)
read -r RATE RATE_TLS <<<"$RATES"
echo "latency at half of saturation: $RATE req/s, 32 connections, 10 s (open loop, from scheduled send time)"
LAT=("direct $BPORT $ID $RATE" "nginx $NPORT $ID $RATE" "paddock $PPORT $ID $RATE")
[ "$TLS" = on ] && LAT+=("nginx-tls $NTPORT $TID $RATE_TLS" "paddock-tls $PPORT $TID $RATE_TLS")
for t in "${LAT[@]}"; do
	set -- $t
	printf '%-11s %6s/s ' "$1" "$4"
	taskset -c "$LOAD_CPU" "$WORK/ratebench" -addr "127.0.0.1:$2" -host "$3.localhost" -rate "$4" -conns 32 -duration 10s | head -1
done
if [ "$TLS" = on ]; then
	# Both proxies keep their tunnel connections alive: the tunnel's
	# accepted connections over the whole run stay in the hundreds.
	echo "node tunnel: $(curl -fsS "http://127.0.0.1:$TMPORT/metrics" | awk '/^paddock_tunnel_connections_total/ {print "connections accepted " $2} /^paddock_tunnel_handshake_failures_total/ {print "handshake failures " $2}' | tr '\n' ' ')"
fi
