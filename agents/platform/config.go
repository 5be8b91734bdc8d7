package platform

import (
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"paddock/agents/agentkit"
	"paddock/agents/allocator"
	"paddock/agents/director"
)

// Config says what `paddock up` starts.
type Config struct {
	// StateDir holds everything up keeps (made absolute by Run).
	StateDir string
	// Zones (zone-1 … zone-N, 1 to 9) and allocators per zone.
	Zones, AllocatorsPerZone int
	// AllocatorMemoryMB each allocator offers to nodes.
	AllocatorMemoryMB int
	// ZKPort, APIPort, ProxyPort: 0 picks a free port.
	ZKPort, APIPort, ProxyPort int
	// ProxyPort -1 turns the proxy's plain HTTP off (HTTPS only).
	// ProxyHTTPSPort is the proxy's HTTPS port (certificates from the
	// platform CA, one per deployment host): 0 picks a free port, -1
	// turns HTTPS off.
	ProxyHTTPSPort int
	// S3Port is the object store's S3 port (snapshots): 0 picks a free
	// port (kept across restarts), -1 starts no object store.
	S3Port int
	// DirectorTunnelAddr and DirectorEnrollAddr ("-" disables one).
	DirectorTunnelAddr, DirectorEnrollAddr string
	// CertTTL of the agents' tunnel certificates.
	CertTTL time.Duration
	// Runtime of the allocators: docker or sim.
	Runtime string
	// Labels go on every Docker object the allocators create.
	Labels map[string]string
	// StartTimeout bounds the start from the director to ready.
	StartTimeout time.Duration
	// Timeout bounds one ZooKeeper connection.
	Timeout time.Duration
	// Containers runs each service in its own container; Scale gives
	// how many constructors and proxies (default one each).
	Containers bool
	Scale      map[string]int
	// Detached (containers mode): return once ready instead of holding
	// the pid lock until ctx ends.
	Detached bool
	// Version of this build (platform image tag, allocator records).
	Version string
	// Binary is this executable (it goes into the images).
	Binary string
	Logger *slog.Logger
	// Progress, when set, gets one line per step.
	Progress io.Writer
	// OnReady, when set, is called once the platform serves.
	OnReady func(Status)
}

// configErr is a Config the operator must correct (an
// *agentkit.ConfigError: the CLI's usage error).
func configErr(format string, args ...any) error { return agentkit.ConfigErrorf(format, args...) }

// Defaults of the CLI contract.
func Defaults() Config {
	return Config{Zones: 3, AllocatorsPerZone: 1, AllocatorMemoryMB: 4096, ZKPort: 2181, APIPort: 12400, ProxyPort: 9200, ProxyHTTPSPort: 9243,
		DirectorTunnelAddr: director.DefaultTunnelAddr, DirectorEnrollAddr: director.DefaultEnrollAddr,
		CertTTL: director.DefaultCertTTL, Runtime: allocator.RuntimeDocker, StartTimeout: 3 * time.Minute, Timeout: 10 * time.Second}
}

// scaled are the services --scale applies to.
var scaled = []string{"constructor", "proxy"}

// Validate checks cfg and fills what is derived (Run calls it; callers
// that start up detached call it first).
func (cfg *Config) Validate() error {
	if cfg.Zones < 1 || cfg.Zones > 9 {
		return configErr("--zones %d: use 1 to 9", cfg.Zones)
	}
	if cfg.AllocatorsPerZone < 1 {
		return configErr("--allocators-per-zone %d: use 1 or more", cfg.AllocatorsPerZone)
	}
	if cfg.AllocatorMemoryMB <= 0 {
		return configErr("--allocator-memory: give a size such as 4g")
	}
	if cfg.Runtime != allocator.RuntimeDocker && cfg.Runtime != allocator.RuntimeSim {
		return configErr("--runtime %q: use docker or sim", cfg.Runtime)
	}
	if len(cfg.Scale) > 0 && !cfg.Containers {
		return configErr("--scale applies to --containers: the in-process mode runs one of each service")
	}
	for k, n := range cfg.Scale {
		if k != "constructor" && k != "proxy" {
			return configErr("--scale %s: only constructor and proxy scale (allocators scale with --zones and --allocators-per-zone)", k)
		}
		if n < 1 || n > 9 {
			return configErr("--scale %s=%d: use 1 to 9", k, n)
		}
	}
	abs, err := filepath.Abs(cfg.StateDir)
	if err != nil {
		return err
	}
	cfg.StateDir = abs
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = Defaults().StartTimeout
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = Defaults().Timeout
	}
	return nil
}

// count is how many of a scaled service run.
func (cfg *Config) count(svc string) int {
	if n := cfg.Scale[svc]; n > 0 {
		return n
	}
	return 1
}

// zoneNames are the platform's zones.
func (cfg *Config) zoneNames() []string { return ZoneNames(cfg.Zones) }

// ZoneNames are zone-1 … zone-n.
func ZoneNames(n int) []string {
	var zs []string
	for i := 1; i <= n; i++ {
		zs = append(zs, fmt.Sprintf("zone-%d", i))
	}
	return zs
}

// allocatorIDs are alloc-<zone>-<n>, zone by zone.
func (cfg *Config) allocatorIDs() (ids, zones []string) {
	for _, z := range cfg.zoneNames() {
		for n := 1; n <= cfg.AllocatorsPerZone; n++ {
			ids = append(ids, fmt.Sprintf("alloc-%s-%d", z, n))
			zones = append(zones, z)
		}
	}
	return ids, zones
}

// Args are the `paddock up --headless` arguments that run cfg (the
// detached supervisor of Spawn).
func (cfg Config) Args(logLevel string) []string {
	args := []string{"up", "--headless", "--state-dir", cfg.StateDir, "--log-format", "json", "--log-level", logLevel,
		"--zones", strconv.Itoa(cfg.Zones), "--allocators-per-zone", strconv.Itoa(cfg.AllocatorsPerZone),
		"--allocator-memory", strconv.Itoa(cfg.AllocatorMemoryMB) + "m", "--zk-port", strconv.Itoa(cfg.ZKPort),
		"--api-port", strconv.Itoa(cfg.APIPort), "--proxy-port", strconv.Itoa(cfg.ProxyPort),
		"--proxy-https-port", strconv.Itoa(cfg.ProxyHTTPSPort), "--s3-port", strconv.Itoa(cfg.S3Port),
		"--runtime", cfg.Runtime, "--start-timeout", cfg.StartTimeout.String(), "--timeout", cfg.Timeout.String(),
		"--director-tunnel-addr", cfg.DirectorTunnelAddr, "--director-enroll-addr", cfg.DirectorEnrollAddr,
		"--cert-ttl", cfg.CertTTL.String()}
	keys := make([]string, 0, len(cfg.Labels))
	for k := range cfg.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "--label", k+"="+cfg.Labels[k])
	}
	return args
}
