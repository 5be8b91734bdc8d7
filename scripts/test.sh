#!/usr/bin/env bash
# The whole test suite: installs what is missing, checks formatting and
# vet, builds, and runs every test (unit, integration against real
# ZooKeeper and Docker, testscripts driving the real binary).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
scripts/setup.sh
scripts/build.sh
unformatted="$(gofmt -l $(git ls-files '*.go') 2>/dev/null || true)"
if [ -n "$unformatted" ]; then
	echo "gofmt needed on:" >&2; echo "$unformatted" >&2; exit 1
fi
go vet ./...
# go.mod says what the code imports, no more and no less.
if ! tidy="$(go mod tidy -diff 2>&1)"; then
	echo "go.mod/go.sum are not tidy: run 'go mod tidy'" >&2; echo "$tidy" >&2; exit 1
fi
# Integration tests fail instead of skipping when CI=true; locally they
# skip what this machine cannot run.
go test -count=1 -timeout 40m -p 2 "$@" ./...
