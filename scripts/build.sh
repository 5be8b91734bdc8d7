#!/usr/bin/env bash
# Builds the static paddock binary into bin/paddock (CGO off: the same
# binary goes into FROM scratch images).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
ver="$(git describe --tags --always --dirty 2>/dev/null || echo dev)"
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X paddock/cmd.Version=0.1.0-$ver" -o bin/paddock .
