#!/usr/bin/env bash
# Constructor benchmarks (figures in docs/benchmarks.md, "## Constructor"):
#   1. the pure placement core: 10,000 allocators in 3 zones, 100,000
#      instance placements of mixed sizes (placements/s, packing quality
#      against the lower bound and a first-fit baseline), one core;
#   2. through ZooKeeper: deployments of 3 instances (one per zone) on sim
#      allocators (real ZooKeeper of its own, real allocator agents, the
#      constructor), time until every instance is placed and acknowledged,
#      at every size of SIZES × ALLOCATORS: instances/s, ZooKeeper write
#      transactions and reads per instance (mntr), CPU per instance, plan
#      phases.
# Needs Java + Debian's zookeeper package for (2) (scripts/setup.sh).
#   SIZES="1000 5000 10000" ALLOCATORS="100 1000" scripts/bench-constructor.sh
#   SIZES=200 ALLOCATORS=100 SKIP_CORE=1 scripts/bench-constructor.sh   # quick
#   PROFILE=dir: CPU profile of each run's timed burst in dir (go tool
#   pprof; -tags splits it by role: constructor, allocators, observer,
#   writers), and its reads by client, request and znode with ZooKeeper's
#   CPU by JVM thread (constructor-A-N.reads).
#   WARMUP=n: deployments placed before timing (default 2,000: after 300
#   the JVM's JIT compiler was still busy, the zk-jit column).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${SIZES:-"1000 5000 10000"}
ALLOCATORS=${ALLOCATORS:-"100 1000"}
if [ -z "${SKIP_CORE:-}" ]; then
	echo "== placement core (one core)"
	taskset -c 0 go test ./engine/placement -run '^$' -bench 'BenchmarkPlace10k$' -benchtime 1x -cpu 1
	go test ./engine/placement -run '^$' -bench 'BenchmarkPlace10kMixedCapacity' -benchtime 1x -cpu 1
fi
echo "== through ZooKeeper"
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go test -c -o "$bin/constructor.test" ./agents/constructor
printf '| allocators | deployments | instances | s | instances/s | ZK writes/instance | ZK reads/instance | CPU ms/instance (agents, ZK, of which JIT) | load |\n|---|---|---|---|---|---|---|---|---|\n' >"$bin/table"
for a in $ALLOCATORS; do
	for n in $SIZES; do
		prof=()
		if [ -n "${PROFILE:-}" ]; then
			mkdir -p "$PROFILE"
			prof=(PADDOCK_BENCH_CPUPROFILE="$PROFILE/constructor-$a-$n.cpu" PADDOCK_BENCH_READS="$PROFILE/constructor-$a-$n.reads")
		fi
		echo "-- $a allocators, $n deployments ($(cut -d' ' -f1-3 /proc/loadavg))"
		out=$(env "${prof[@]}" PADDOCK_BENCH_WARMUP="${WARMUP:-2000}" PADDOCK_BENCH_ALLOCATORS=$a PADDOCK_BENCH_DEPLOYMENTS=$n \
			"$bin/constructor.test" -test.run '^$' -test.bench ZooKeeperPlacement -test.benchtime 1x -test.timeout 60m 2>&1) || { echo "$out"; exit 1; }
		echo "$out" | grep -E 'instances/s|allocators, [0-9]+ deployments'
		line=$(echo "$out" | grep -E '^Benchmark')
		val() { echo "$line" | grep -oE "[0-9.]+ $1" | head -1 | cut -d' ' -f1; }
		load=$(echo "$out" | grep -oE 'load [0-9. ]+' | head -1 | cut -d' ' -f2-4)
		printf '| %s | %s | %s | %s | %s | %s | %s | %s, %s, %s | %s |\n' "$a" "$n" "$((3 * n))" "$(val s-total)" "$(val instances/s)" \
			"$(val zk-writes/instance)" "$(val zk-reads/instance)" "$(val cpu-ms/instance)" "$(val zk-cpu-ms/instance)" "$(val zk-jit-ms/instance)" "$load" >>"$bin/table"
	done
done
echo
cat "$bin/table"
echo "machine: $(nproc) cores; $(uptime)"
