#!/usr/bin/env bash
# bench-proxy.sh: paddock's proxy against nginx as the equivalent reverse
# proxy (keep-alive upstream), side by side in one run, at equal worker
# cores: GOMAXPROCS=1 (one event loop) against worker_processes 1, then
# GOMAXPROCS=2 (two loops) against worker_processes 2. Requests/s, CPU
# µs per request (user + system of the proxy's processes, from /proc)
# and open-loop latency at half of saturation, for plain HTTP to the
# node and for the path through the allocator's mutual-TLS node tunnel.
#
# Usage: scripts/bench-proxy.sh [duration=10s] [connections=32]
# Env:   RUNS (rounds; every target once per round, nginx and paddock
#        alternating first (ABBA...); medians and min–max over rounds;
#        default 5; 0: only the COUNTS pass),
#        CORES ("1 2": the equal-core configurations to run),
#        PIN=on|off (default on; see "Pinning" below),
#        PROXY_CPU1 / LOAD_CPU1 (the 1-core rows' CPUs when pinned:
#        default 1 for the proxy under test, 0 for wrk/ratebench, the
#        backend and the tunnel server),
#        ACCESS_LOG=on|off (both proxies log each request; default on),
#        TLS=on|off (the mTLS row; default on),
#        GOROUTINES=on|off (also measure paddock's goroutine-per-
#        connection front end, --event-loops=-1, at 1 core; default on),
#        COUNTS=on|off (default on: after the rounds, one more wrk run per
#        target under `perf stat`, not in the medians, for system calls,
#        context switches and CPU migrations per request: counts, unlike
#        µs, do not depend on the machine's load).
#
# Pinning (PIN=on). The 1-core rows run the proxy under test (nginx's
# worker, or every thread of paddock at GOMAXPROCS=1) alone on CPU
# PROXY_CPU1 and everything else of the benchmark (wrk or ratebench, the
# backend, the tunnel server) on LOAD_CPU1, so the proxy never waits for
# a CPU behind its own load generator or backend and never moves between
# cores. Unpinned (PIN=off), the proxy shares both CPUs with its load
# and its waits for a CPU are part of every figure. The 2-core rows cannot be separated on a 2-core machine:
# everything runs on both CPUs, and their p99s include waits for a CPU.
# The backend's and tunnel server's affinity is set before each run
# (taskset -a -p). Each run prints how busy each CPU was (from
# /proc/stat): when the load CPU is near 100 % in a 1-core row, the load
# side, not the proxy, set that run's req/s (CPU per request still holds).
#
# The mTLS row, as on a platform: the backend sits behind `paddock tunnel
# server` (the allocator's :9400 end: allocator certificate, admits
# proxy certificates only); paddock dials it as a tls backend with its
# proxy certificate (--backend-cert/--backend-key/--backend-ca, SNI
# bench-1.node.paddock), nginx with proxy_ssl_certificate(_key),
# proxy_ssl_trusted_certificate + proxy_ssl_verify on, proxy_ssl_server_name
# with the same SNI, a keep-alive upstream and proxy_ssl_session_reuse.
#
# Every run records the 1-minute load average when it ends: the machine
# is shared, and figures taken under load are to be read as such.
# Latency: agents/proxy/internal/ratebench sends at a fixed rate (half the
# lower of nginx's and paddock's median req/s of that row and core count)
# and measures from each request's scheduled time (a quarter in the
# pinned 1-core rows: their load CPU carries ratebench's two requests per
# instant, the backend's two answers and the tunnel server, and at half
# the proxy's saturation it saturated before the proxy; measured
# 2026-12-02 17:54, direct p50 6-11 ms). Added latency is
# measured in pairs: each request goes at the same scheduled instant to
# the backend directly and through the proxy, on equal connections, and
# the script reports the percentiles of the per-pair difference (proxy
# minus direct for the same instant: a stall of the load CPU delays both
# and cancels out, so this shows the proxy's share). The direct path's
# own p99 is printed beside it: with PIN=on it is the load CPU's own
# scheduling noise.
set -euo pipefail
DUR=${1:-10s}
CONNS=${2:-32}
export PIN=${PIN:-on}
PROXY_CPU1=${PROXY_CPU1:-1}
LOAD_CPU1=${LOAD_CPU1:-0}
ALL_CPU=0-$(($(nproc) - 1))
COUNTS=${COUNTS:-on}
RUNS=${RUNS:-5}
CORES=${CORES:-1 2}
ACCESS_LOG=${ACCESS_LOG:-on}
TLS=${TLS:-on}
GOROUTINES=${GOROUTINES:-on}
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

ID=0123456789abcdef0123456789abcdef
TID=fedcba9876543210fedcba9876543210
SNI=bench-1.node.paddock
BODY='{"name":"bench-node","cluster_name":"bench","cluster_uuid":"bench","version":{"number":"8.17.0"},"tagline":"You Know, for Search"}'
BPORT=$(freeport); TPORT=$(freeport); TMPORT=$(freeport)

echo "building paddock" >&2
(cd "$ROOT" && CGO_ENABLED=0 go build -o "$WORK/paddock" . && go build -o "$WORK/ratebench" ./agents/proxy/internal/ratebench)

# Backend: a static JSON answer from nginx (one worker, load cores).
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
  server {
    listen 127.0.0.1:$BPORT;
    location / { default_type application/json; return 200 '$BODY'; }
  }
}
CONF
nginx -c "$WORK/backend/nginx.conf" -p "$WORK/backend" &
PIDS+=($!)
declare -A PIDOF PORTOF HOSTOF METRICS
PIDOF[direct]=$!
PORTOF[direct]=$BPORT
HOSTOF[direct]=$ID
declare -A COREOF
COREOF[direct]=${CORES%% *} # the direct runs are pinned as the first row's

TUNNEL_PID=
PKI="$WORK/pki"
if [ "$TLS" = on ]; then
	"$WORK/paddock" tunnel cert --ca-dir "$PKI" --role allocator --id a1 --dns "$SNI" >/dev/null
	"$WORK/paddock" tunnel cert --ca-dir "$PKI" --role proxy --id p1 >/dev/null
	# The allocator's node tunnel in front of the backend (load cores).
	GOMAXPROCS=2 "$WORK/paddock" tunnel server --name nodes --listen "127.0.0.1:$TPORT" --target "127.0.0.1:$BPORT" \
		--cert "$PKI/allocator-a1.crt" --key "$PKI/allocator-a1.key" --ca "$PKI/ca.pem" --allow role:proxy --log-level error \
		--metrics-addr "127.0.0.1:$TMPORT" &
	PIDS+=($!)
	TUNNEL_PID=$!
fi

cat >"$WORK/routes.json" <<JSON
{"source":"disk","routes":{"$ID":{"deployment_id":"$ID","state":"live","generation":1,
 "backends":[{"instance_id":"bench-1","kind":"elasticsearch","allocator":"a1","zone":"zone-1","address":"127.0.0.1:$BPORT"}]},
 "$TID":{"deployment_id":"$TID","state":"live","generation":1,
 "backends":[{"instance_id":"bench-1","kind":"elasticsearch","allocator":"a1","zone":"zone-1","address":"127.0.0.1:$TPORT","tls":true}]}},
 "allocators":{}}
JSON
BACKEND_TLS=()
[ "$TLS" = on ] && BACKEND_TLS=(--backend-cert "$PKI/proxy-p1.crt" --backend-key "$PKI/proxy-p1.key" --backend-ca "$PKI/ca.pem")

# proxycpus N / loadcpus N: the CPUs of a proxy with N cores and of the
# load side of its runs.
proxycpus() { if [ "$PIN" = on ] && [ "$1" = 1 ]; then echo "$PROXY_CPU1"; else echo "$ALL_CPU"; fi; }
loadcpus() { if [ "$PIN" = on ] && [ "$1" = 1 ]; then echo "$LOAD_CPU1"; else echo "$ALL_CPU"; fi; }
# pinload N: the backend and the tunnel server (every process and
# thread) onto the load CPUs of an N-core row.
pinload() {
	local c p
	c=$(loadcpus "$1")
	for p in ${PIDOF[direct]} $(pgrep -P "${PIDOF[direct]}" || true) $TUNNEL_PID; do
		taskset -a -p -c "$c" "$p" >/dev/null
	done
}

# start_nginx N: nginx with N workers, plain and mTLS servers.
start_nginx() {
	local n=$1 dir="$WORK/nginx$1" port tport log
	mkdir -p "$dir"
	port=$(freeport); tport=$(freeport)
	if [ "$ACCESS_LOG" = on ]; then log="access_log $dir/access.log combined buffer=64k flush=1s;"; else log="access_log off;"; fi
	local tlsconf=""
	if [ "$TLS" = on ]; then
		tlsconf="
  upstream backend_tls { server 127.0.0.1:$TPORT; keepalive 128; }
  server {
    listen 127.0.0.1:$tport;
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
	cat >"$dir/nginx.conf" <<CONF
worker_processes $n;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
  $log
  keepalive_requests 10000000;
  upstream backend { server 127.0.0.1:$BPORT; keepalive 128; }
  server {
    listen 127.0.0.1:$port;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    }
  }
  $tlsconf
}
CONF
	taskset -c "$(proxycpus "$n")" nginx -c "$dir/nginx.conf" -p "$dir" &
	PIDS+=($!)
	PIDOF[nginx$n]=$!; PORTOF[nginx$n]=$port; HOSTOF[nginx$n]=$ID; COREOF[nginx$n]=$n
	PIDOF[nginx$n-tls]=$!; PORTOF[nginx$n-tls]=$tport; HOSTOF[nginx$n-tls]=$TID; COREOF[nginx$n-tls]=$n
}

# start_paddock NAME GOMAXPROCS [flags]: a paddock proxy.
start_paddock() {
	local name=$1 procs=$2 port plog mport
	shift 2
	port=$(freeport); mport=$(freeport)
	plog=""
	[ "$ACCESS_LOG" = on ] && plog="$WORK/$name-access.log"
	GOMAXPROCS=$procs taskset -c "$(proxycpus "$procs")" "$WORK/paddock" proxy --routes-file "$WORK/routes.json" \
		--http-addr "127.0.0.1:$port" --https-addr "" --access-log "$plog" --log-level warn \
		--metrics-addr "127.0.0.1:$mport" --state-dir "$WORK/state-$name" "${BACKEND_TLS[@]}" "$@" &
	PIDS+=($!)
	PIDOF[$name]=$!; PORTOF[$name]=$port; HOSTOF[$name]=$ID; METRICS[$name]=$mport; COREOF[$name]=$procs
	PIDOF[$name-tls]=$!; PORTOF[$name-tls]=$port; HOSTOF[$name-tls]=$TID; COREOF[$name-tls]=$procs
}

PAIRS=()
for n in $CORES; do
	start_nginx "$n"
	start_paddock "paddock$n" "$n"
	PAIRS+=("nginx$n paddock$n")
	[ "$TLS" = on ] && PAIRS+=("nginx$n-tls paddock$n-tls")
done
if [ "$GOROUTINES" = on ]; then
	start_paddock paddock1-g 1 --event-loops=-1
fi

waitport "$BPORT"
[ "$TLS" = on ] && waitport "$TPORT"
for t in "${!PORTOF[@]}"; do waitport "${PORTOF[$t]}"; done
for t in "${!PORTOF[@]}"; do
	curl -fsS -H "Host: ${HOSTOF[$t]}.localhost" "http://127.0.0.1:${PORTOF[$t]}/" | grep -q bench-node || { echo "target $t does not answer" >&2; exit 1; }
done

# cputicks PID: user+system clock ticks of PID and its children (the
# nginx workers; all threads of paddock).
cputicks() {
	local t=0 p
	for p in $1 $(pgrep -P "$1" || true); do
		t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
	done
	echo "$t"
}
# cpustat: per-CPU busy and total jiffies, "busy0 total0 busy1 total1 ...".
cpustat() { awk '/^cpu[0-9]/ {b=$2+$3+$4+$7+$8+$9; print b, b+$5+$6}' /proc/stat | tr '\n' ' '; }
# busy BEFORE AFTER: per-CPU busy percentages between two cpustat samples.
busy() { python3 -c "
import sys
a, b = list(map(int, sys.argv[1].split())), list(map(int, sys.argv[2].split()))
print('/'.join(str(round(100 * (b[i] - a[i]) / max(1, b[i + 1] - a[i + 1]))) for i in range(0, len(a), 2)))" "$1" "$2"; }
run() { # target round
	local name=$1 round=$2
	local pid=${PIDOF[$name]} t0 t1 s0 s1 cores=${COREOF[$name]}
	pinload "$cores"
	t0=$(cputicks "$pid"); s0=$(cpustat)
	taskset -c "$(loadcpus "$cores")" wrk -t1 -c"$CONNS" -d"$DUR" --latency -H "Host: ${HOSTOF[$name]}.localhost" "http://127.0.0.1:${PORTOF[$name]}/" >"$WORK/wrk.txt"
	t1=$(cputicks "$pid"); s1=$(cpustat)
	local rps n cpu p99 load
	rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.txt")
	n=$(awk '/requests in/ {print $1}' "$WORK/wrk.txt")
	p99=$(awk '$1=="99%" {print $2}' "$WORK/wrk.txt")
	cpu=$(python3 -c "print(f'{($t1-$t0)/$(getconf CLK_TCK)*1e6/$n:.1f}')")
	load=$(cut -d' ' -f1 /proc/loadavg)
	printf '%-16s %5s %10s %10s %10s %6s %9s\n' "$name" "$round" "$rps" "$p99" "$cpu" "$load" "$(busy "$s0" "$s1")"
	echo "$name $round $rps $cpu $load" >>"$WORK/runs"
}
cat >"$WORK/count.py" <<'PY'
import sys
path, n, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
v = {}
for line in open(path):
    f = line.strip().split(",")
    if len(f) > 3 and f[0][:1].isdigit():
        v[f[2].replace("raw_syscalls:sys_enter", "all").replace("syscalls:sys_enter_", "")] = float(f[0])
g = lambda *k: sum(v.get(x, 0) for x in k) / n
print(f"{name:16} {g('all'):8.2f} {g('read', 'recvfrom'):6.2f} {g('write', 'writev'):6.2f} {g('epoll_wait', 'epoll_pwait'):6.2f} "
      f"{g('futex'):6.2f} {g('nanosleep'):7.2f} {g('context-switches'):6.2f} {g('cpu-migrations'):7.3f} {v.get('task-clock', 0) * 1e3 / n:8.1f}")
PY
# count TARGET: one wrk run under perf stat on the proxy's processes (all
# threads); system calls, context switches and migrations per request.
# Through the tunnel, the tunnel server is counted too (same run).
PERF_EVENTS=raw_syscalls:sys_enter,syscalls:sys_enter_read,syscalls:sys_enter_recvfrom,syscalls:sys_enter_write,syscalls:sys_enter_writev,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_futex,syscalls:sys_enter_nanosleep,context-switches,cpu-migrations,task-clock
count() {
	local name=$1 cores=${COREOF[$1]} pids n tp=
	pids=$(echo "${PIDOF[$1]}" $(pgrep -P "${PIDOF[$1]}" || true) | tr ' ' ',')
	pinload "$cores"
	if [ "${name%-tls}" != "$name" ] && [ -n "$TUNNEL_PID" ]; then
		perf stat -x, -o "$WORK/perf-tunnel.txt" -p "$TUNNEL_PID" -e "$PERF_EVENTS" -- sleep "$DUR" &
		tp=$!
	fi
	perf stat -x, -o "$WORK/perf.txt" -p "$pids" -e "$PERF_EVENTS" \
		-- taskset -c "$(loadcpus "$cores")" wrk -t1 -c"$CONNS" -d"$DUR" -H "Host: ${HOSTOF[$name]}.localhost" "http://127.0.0.1:${PORTOF[$name]}/" >"$WORK/wrk.txt"
	n=$(awk '/requests in/ {print $1}' "$WORK/wrk.txt")
	python3 "$WORK/count.py" "$WORK/perf.txt" "$n" "$name"
	if [ -n "$tp" ]; then
		wait "$tp" || true
		python3 "$WORK/count.py" "$WORK/perf-tunnel.txt" "$n" "  tunnel server"
	fi
}
echo "wrk -t1 -c$CONNS -d$DUR, $RUNS rounds; cores: $CORES; pinning $PIN (1-core rows: proxy on cpu $PROXY_CPU1, wrk, backend and tunnel server on cpu $LOAD_CPU1; 2-core rows: all on $ALL_CPU); access log $ACCESS_LOG; $(nproc) cores; $(date -u +%FT%TZ); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
# Warm-up (connections, pools, caches).
for t in "${!PORTOF[@]}"; do
	wrk -t1 -c"$CONNS" -d1s -H "Host: ${HOSTOF[$t]}.localhost" "http://127.0.0.1:${PORTOF[$t]}/" >/dev/null
done
printf '%-16s %5s %10s %10s %10s %6s %9s\n' target round "req/s" "wrk p99" "cpu-us/req" load "busy% cpu0/1.."
touch "$WORK/runs" "$WORK/added"
for r in $(seq "$RUNS"); do
	run direct "$r"
	for pair in "${PAIRS[@]}"; do
		set -- $pair
		if [ $((r % 2)) = 1 ]; then run "$1" "$r"; run "$2" "$r"; else run "$2" "$r"; run "$1" "$r"; fi
	done
	[ "$GOROUTINES" = on ] && run paddock1-g "$r"
done
if [ "$COUNTS" = on ]; then
	echo
	echo "per request, one more wrk run per target under perf stat (not in the medians; the proxy's processes only; task-us is inflated by perf):"
	printf '%-16s %8s %6s %6s %6s %6s %7s %6s %7s %8s\n' target syscalls reads writes epoll futex nanoslp ctxsw migr task-us
	for pair in "${PAIRS[@]}"; do
		set -- $pair
		count "$1"; count "$2"
	done
	[ "$GOROUTINES" = on ] && count paddock1-g
fi

# Medians and spread; the latency rates.
python3 - "$WORK/runs" "${PAIRS[@]}" >"$WORK/rates" <<'PY'
import os, sys, statistics as st
runs, pairs = sys.argv[1], sys.argv[2:]
rps, cpu, load = {}, {}, {}
for line in open(runs):
    name, _, r, c, l = line.split()
    rps.setdefault(name, []).append(float(r)); cpu.setdefault(name, []).append(float(c)); load.setdefault(name, []).append(float(l))
def fmt(v, f="{:.0f}"):
    return f"{f.format(st.median(v))} ({f.format(min(v))}–{f.format(max(v))})"
out = sys.stderr
print("\nmedian (min–max) over rounds; load = 1-min load average at the end of each run", file=out)
print(f"{'target':16} {'req/s':>24} {'cpu-us/req':>22} {'load':>14}", file=out)
for n in rps:
    print(f"{n:16} {fmt(rps[n]):>24} {fmt(cpu[n], '{:.1f}'):>22} {fmt(load[n], '{:.1f}'):>14}", file=out)
print("\nratios of medians (paddock/nginx req/s; nginx/paddock CPU per request: above 1.0 paddock is ahead)", file=out)
for p in pairs:
    ng, pd = p.split()
    if pd not in rps or ng not in rps:
        continue  # RUNS=0: counts only
    print(f"{pd:16} req/s {st.median(rps[pd])/st.median(rps[ng]):.2f}x   cpu/req {st.median(cpu[ng])/st.median(cpu[pd]):.2f}x   "
          f"(per round: req/s {min(a/b for a,b in zip(rps[pd],rps[ng])):.2f}–{max(a/b for a,b in zip(rps[pd],rps[ng])):.2f}x, "
          f"cpu {min(b/a for a,b in zip(cpu[pd],cpu[ng])):.2f}–{max(b/a for a,b in zip(cpu[pd],cpu[ng])):.2f}x)", file=out)
    # Half of saturation; a quarter in pinned 1-core rows, where one CPU
    # carries ratebench's two requests per instant, the backend's two
    # answers and the tunnel server: at half, that CPU saturates first.
    div = 4 if os.environ.get("PIN", "on") == "on" and pd.removesuffix("-tls").endswith("1") else 2
    print(ng, pd, int(min(st.median(rps[ng]), st.median(rps[pd])) / div))
if "paddock1-g" in rps:
    print(f"{'paddock1-g':16} goroutine front end at 1 core: req/s {st.median(rps['paddock1-g'])/st.median(rps['paddock1']):.2f}x the loop's, "
          f"cpu/req {st.median(cpu['paddock1-g']):.1f} vs the loop's {st.median(cpu['paddock1']):.1f} us", file=out)
PY

echo
echo "latency at half of saturation (open loop, 32 connections per target, 10 s, from scheduled send time)."
echo "Each proxy is measured paired with the backend itself: every request goes at the same scheduled instant to"
echo "the backend directly and through the proxy; 'added' is the distribution of the per-pair differences"
echo "(proxy - direct), in which stalls of the whole machine cancel out. Own percentiles beside it for reference."
lat() { # proxy-target rate
	local t=$1 rate=$2
	local res load
	pinload "${COREOF[$t]}"
	res=$(taskset -c "$(loadcpus "${COREOF[$t]}")" "$WORK/ratebench" -rate "$rate" -conns 32 -duration 10s \
		-target "direct=127.0.0.1:${PORTOF[direct]}/${HOSTOF[direct]}.localhost" -target "$t=127.0.0.1:${PORTOF[$t]}/${HOSTOF[$t]}.localhost")
	load=$(cut -d' ' -f1 /proc/loadavg)
	echo "$res" | sed "s/^/  /"
	echo "$res" | awk -v t="$t" -v r="$rate" -v l="$load" '/added to direct/ {printf "%-16s %6s/s added p50 %s p99 %s p99.9 %s load %s\n", t, r, $11, $13, $15, l}' >>"$WORK/added"
}
i=0
while read -r ng pd rate; do
	# alternate which proxy goes first
	if [ $((i % 2)) = 0 ]; then lat "$ng" "$rate"; lat "$pd" "$rate"; else lat "$pd" "$rate"; lat "$ng" "$rate"; fi
	i=$((i + 1))
done <"$WORK/rates"
echo "added latency (proxy - direct per request pair):"
cat "$WORK/added"
if [ "$TLS" = on ]; then
	# Both proxies keep their tunnel connections alive; idle ones expire
	# between rounds (paddock 30 s, nginx 60 s), so expect about one pool
	# per target and round, not one connection per request. The port
	# probe at start counts as one handshake failure.
	echo "node tunnel: $(curl -fsS "http://127.0.0.1:$TMPORT/metrics" | awk '/^paddock_tunnel_connections_total/ {print "connections accepted " $2} /^paddock_tunnel_handshake_failures_total/ {print "handshake failures " $2}' | tr '\n' ' ')"
fi
# The loops served every request themselves (no connection handed over
# to the goroutine server).
for t in "${!METRICS[@]}"; do
	echo "$t: connections handed to goroutines: $(curl -fsS "http://127.0.0.1:${METRICS[$t]}/metrics" | awk '/^paddock_proxy_loop_handoffs_total/ {s += $2} END {print s + 0}')"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
