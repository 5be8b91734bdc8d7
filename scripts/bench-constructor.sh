#!/usr/bin/env bash
# Constructor benchmarks (figures in docs/benchmarks.md, "## Constructor"):
#   1. the pure placement core: 10,000 allocators in 3 zones, 100,000
#      instance placements of mixed sizes (placements/s, packing quality
#      against the lower bound and a first-fit baseline), one core;
#   2. through ZooKeeper: 1,000 deployments of 3 instances on 100 sim
#      allocators (real ZooKeeper, real allocator agents, the
#      constructor), time until every instance is placed and acknowledged.
# Needs Java + Debian's zookeeper package for (2) (scripts/setup.sh).
# PADDOCK_BENCH_DEPLOYMENTS=200 scripts/bench-constructor.sh for a quick run.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== placement core (one core)"
taskset -c 0 go test ./engine/placement -run '^$' -bench 'BenchmarkPlace10k$' -benchtime 1x -cpu 1
go test ./engine/placement -run '^$' -bench 'BenchmarkPlace10kMixedCapacity' -benchtime 1x -cpu 1
echo "== through ZooKeeper"
go test ./agents/constructor -count=1 -run '^$' -bench ZooKeeper -benchtime 1x -timeout 30m
echo "machine: $(nproc) cores; $(uptime)"
