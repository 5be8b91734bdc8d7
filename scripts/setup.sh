#!/usr/bin/env bash
# Installs what paddock needs on a fresh Debian machine, idempotently:
# ZooKeeper (Debian's package) and a JRE, stunnel4, nginx, haproxy, wrk and
# tmux (interop, side-by-side benchmarks, console end-to-end test),
# Elastic's Python client (a deployment must serve the official clients),
# and SeaweedFS's weed (the snapshot object store, built from the Go
# module proxy into ~/.cache/paddock/bin or $PADDOCK_TOOLS). Checks
# that Go and the Docker engine are there. Safe to run again and again.
set -euo pipefail

log() { printf 'setup: %s\n' "$*" >&2; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null; then SUDO="sudo"; else
		log "not root and no sudo: install the packages below by hand"; fi
fi

# Debian package → a file that proves it is installed.
declare -A want=(
	[zookeeper]=/usr/share/java/zookeeper.jar
	[libslf4j-java]=/usr/share/java/slf4j-simple.jar
	[default-jre-headless]=/usr/bin/java
	[stunnel4]=/usr/bin/stunnel4
	[nginx-light]=/usr/sbin/nginx
	[haproxy]=/usr/sbin/haproxy
	[wrk]=/usr/bin/wrk
	[tmux]=/usr/bin/tmux
	[netcat-openbsd]=/bin/nc
	[python3-elasticsearch]=/usr/lib/python3/dist-packages/elasticsearch/__init__.py
)
missing=()
for pkg in "${!want[@]}"; do
	if [ ! -e "${want[$pkg]}" ]; then
		# Java may come from elsewhere (e.g. a JDK already on PATH).
		if [ "$pkg" = default-jre-headless ] && command -v java >/dev/null; then continue; fi
		if [ "$pkg" = nginx-light ] && command -v nginx >/dev/null; then continue; fi
		missing+=("$pkg")
	fi
done
if [ ${#missing[@]} -gt 0 ]; then
	log "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq >/dev/null || log "apt-get update failed; trying the install anyway"
	$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	# Debian starts nginx/haproxy/stunnel services on install in some
	# images; paddock runs its own instances on other ports.
	for svc in nginx haproxy zookeeper; do
		$SUDO systemctl stop "$svc" >/dev/null 2>&1 || $SUDO service "$svc" stop >/dev/null 2>&1 || true
	done
else
	log "system packages present"
fi

if ! command -v go >/dev/null; then
	if [ -x /usr/local/go/bin/go ]; then
		log "Go is in /usr/local/go/bin: add it to PATH"
	else
		log "Go 1.26 is required: install it from https://go.dev/dl/ (or the module proxy's toolchain)"; exit 1
	fi
fi
if ! command -v docker >/dev/null || ! docker info >/dev/null 2>&1; then
	log "the Docker engine is not reachable (docker info failed): start it (systemctl start docker) or set DOCKER_HOST"
	exit 1
fi
# SeaweedFS's weed: the S3-compatible object store for snapshot
# repositories, built once from the Go module proxy into the tools cache
# (engine/s3server finds it there). Its go.mod has replace directives,
# so `go install mod@version` refuses it: build inside the downloaded
# module instead. A large build (several minutes on 2 cores).
WEED_MODULE=github.com/seaweedfs/seaweedfs
WEED_VERSION=v0.0.0-20261109003541-7506e5f91cd6
TOOLS="${PADDOCK_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/paddock/bin}"
if [ -x "$TOOLS/weed" ]; then
	log "weed present ($TOOLS/weed)"
else
	log "building weed ($WEED_MODULE@$WEED_VERSION) into $TOOLS: this takes several minutes"
	mkdir -p "$TOOLS"
	weed_src="$(cd "$(mktemp -d)" && GOFLAGS=-mod=mod go mod download -json "$WEED_MODULE@$WEED_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
	if [ -z "$weed_src" ] || [ ! -d "$weed_src/weed" ]; then
		log "cannot download $WEED_MODULE@$WEED_VERSION from the Go module proxy (GOPROXY=$(go env GOPROXY))"; exit 1
	fi
	(cd "$weed_src" && CGO_ENABLED=0 go build -trimpath -o "$TOOLS/weed.tmp" ./weed)
	mv "$TOOLS/weed.tmp" "$TOOLS/weed"
	log "weed built: $("$TOOLS/weed" version 2>/dev/null | head -1)"
fi

log "ok: $(java -version 2>&1 | head -1), $(docker version --format 'docker {{.Server.Version}}' 2>/dev/null)"
