package allocator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"paddock/agents/agentkit"
	"paddock/engine"
	"paddock/stunnel"
)

// Runtimes.
const (
	RuntimeDocker = "docker"
	RuntimeSim    = "sim"
)

// Config configures one allocator. `paddock up` runs several in one
// process, each with its own ID, Zone and StateDir.
type Config struct {
	// ID names the allocator (alloc-zone-1-1...). Required.
	ID string
	// Zone is the availability zone. Required.
	Zone string
	// Host is the address proxies use to reach this host's nodes
	// (default PublishIP).
	Host string
	// PublishIP is where node ports are published (default 127.0.0.1;
	// 0.0.0.0 is refused: name an interface).
	PublishIP string
	// CapacityMB is the memory offered (0: 85% of host memory). The
	// admin-written settings node overrides it live.
	CapacityMB int
	Tags       map[string]string
	// StateDir holds credentials/allocator-<id>.json and the volume
	// ledger. Required.
	StateDir string
	// SnapshotDir is the shared snapshot repository directory mounted at
	// /snapshots in nodes (default <StateDir>/snapshots).
	SnapshotDir string
	// Runtime is docker (default) or sim.
	Runtime string

	// Store, when set, is an already-connected store authenticated as the
	// allocator role plus the allocator's own identity (see
	// OwnCredential). Otherwise the allocator connects with ZK, adding
	// its own identity, and closes the store when done.
	Store *engine.Store
	ZK    engine.Options

	// ImageRepo of node images (default paddock/node).
	ImageRepo string
	// NodeBinary is a static paddock binary to build missing images with
	// ("" : a missing image is an error).
	NodeBinary string
	// Labels are added to every Docker object (tests: paddock.test).
	Labels map[string]string
	// PidsLimit per node container (default 512).
	PidsLimit int64
	// ParallelCreates bounds concurrent container creations (default 2;
	// sim: 64).
	ParallelCreates int

	// ProbeInterval between health probes (default 2s).
	ProbeInterval time.Duration
	// ProbeTimeout of one probe (default 1s).
	ProbeTimeout time.Duration
	// FailureThreshold consecutive failed probes restart a node that was
	// healthy (default 3).
	FailureThreshold int
	// StartTimeout restarts a node never healthy this long after start
	// (default 60s).
	StartTimeout time.Duration
	// StopTimeout between SIGTERM and SIGKILL (default 10s).
	StopTimeout time.Duration
	// VolumeGrace keeps data volumes of removed instances (default 24h).
	VolumeGrace time.Duration

	// MetricsAddr serves /metrics /healthz /readyz ("" : none).
	MetricsAddr string
	// Registry (default a new agentkit registry).
	Registry *prometheus.Registry
	Logger   *slog.Logger
	// Version of paddock, written in the record.
	Version string

	// PlatformID labels every Docker object (paddock.platform) and
	// scopes what the allocator lists and removes to this platform. ""
	// reads it from /paddock/config (the normal case); tests running two
	// platforms' allocators set it.
	PlatformID string

	// TunnelLoader is this host's allocator-role certificate (reloaded
	// on renewal, e.g. stunnel.NewFileLoader over director.TLSFiles(
	// stateDir, "allocator")). With it the allocator runs an mTLS tunnel
	// in front of its nodes, routing by SNI (stunnel.BackendSNI(instance
	// id)) to each node's loopback port, admitting proxy and
	// constructor certificates only. nil: no tunnel.
	TunnelLoader *stunnel.Loader
	// TunnelListen is the tunnel's listen address (default ":9400" when
	// TunnelLoader is set; "-" disables it).
	TunnelListen string
	// TunnelHost is the host advertised in InstanceStatus.TunnelAddr
	// (default Host).
	TunnelHost string
	// TunnelMetrics (default stunnel.NewMetrics(Registry)).
	TunnelMetrics *stunnel.Metrics
	// IsolateNodes puts this allocator's nodes on a network of their own
	// per deployment (paddock-dep-<deployment>-<allocator>) instead of
	// one shared by the host's allocators: nodes of two allocators then
	// have no plain path between them even on one host (docker runtime
	// with the node tunnel, whose peer egress carries their traffic).
	IsolateNodes bool

	// NewRuntime overrides the runtime (tests).
	NewRuntime func(Config) (Runtime, error)
	// OnReady is called with the bound metrics address once registered.
	OnReady func(metricsAddr string)
}

func (c *Config) defaults() error {
	if c.ID == "" || !idPattern.MatchString(c.ID) {
		return fmt.Errorf("allocator id %q is missing or invalid: pass --id (letters, digits, '.', '_', '-')", c.ID)
	}
	if c.Zone == "" {
		return errors.New("allocator zone is missing: pass --zone")
	}
	if c.StateDir == "" {
		return errors.New("allocator state directory is missing: pass --state-dir")
	}
	if c.Registry == nil {
		c.Registry = agentkit.NewRegistry()
	}
	if c.PublishIP == "" {
		c.PublishIP = "127.0.0.1"
	}
	if ip := net.ParseIP(c.PublishIP); ip == nil || ip.IsUnspecified() {
		return fmt.Errorf("publish IP %q must be one interface's address (such as 127.0.0.1), never 0.0.0.0", c.PublishIP)
	}
	if c.Host == "" {
		c.Host = c.PublishIP
	}
	if c.TunnelListen == "-" || c.TunnelLoader == nil {
		c.TunnelListen = ""
	} else if c.TunnelListen == "" {
		c.TunnelListen = DefaultTunnelListen
	}
	if c.TunnelHost == "" {
		c.TunnelHost = c.Host
	}
	if c.TunnelListen != "" && c.TunnelMetrics == nil {
		c.TunnelMetrics = stunnel.NewMetrics(c.Registry)
	}
	if c.SnapshotDir == "" {
		c.SnapshotDir = filepath.Join(c.StateDir, "snapshots")
	}
	if c.Runtime == "" {
		c.Runtime = RuntimeDocker
	}
	if c.Runtime != RuntimeDocker && c.Runtime != RuntimeSim {
		return fmt.Errorf("unknown runtime %q: use docker or sim", c.Runtime)
	}
	if c.ImageRepo == "" {
		c.ImageRepo = DefaultImageRepo
	}
	if c.ProbeInterval == 0 {
		c.ProbeInterval = 2 * time.Second
	}
	if c.ProbeTimeout == 0 {
		c.ProbeTimeout = time.Second
	}
	if c.FailureThreshold == 0 {
		c.FailureThreshold = 3
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = 60 * time.Second
	}
	if c.StopTimeout == 0 {
		c.StopTimeout = 10 * time.Second
	}
	if c.VolumeGrace == 0 {
		c.VolumeGrace = 24 * time.Hour
	}
	if c.ParallelCreates == 0 {
		c.ParallelCreates = 2
		if c.Runtime == RuntimeSim {
			c.ParallelCreates = 64
		}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// OwnCredentialFile is <stateDir>/credentials/allocator-<id>.json.
func OwnCredentialFile(stateDir, id string) string {
	return filepath.Join(stateDir, "credentials", engine.OwnAllocatorUser(id)+".json")
}

// OwnCredential loads the allocator's own identity, generating and
// saving a random one at first start.
func OwnCredential(stateDir, id string) (engine.Credential, error) {
	file := OwnCredentialFile(stateDir, id)
	if _, err := os.Stat(file); err == nil {
		c, err := engine.LoadCredential(file)
		if err != nil {
			return c, err
		}
		if c.User != engine.OwnAllocatorUser(id) {
			return c, fmt.Errorf("credential file %s names %q, not %q: it belongs to another allocator", file, c.User, engine.OwnAllocatorUser(id))
		}
		return c, nil
	}
	c := engine.Credential{User: engine.OwnAllocatorUser(id), Password: engine.RandomToken(24)}
	if err := engine.SaveCredential(file, c); err != nil {
		return c, fmt.Errorf("save own credential %s: %w (is --state-dir writable?)", file, err)
	}
	return c, nil
}

// Run runs an allocator until ctx ends. Node containers keep running
// when it returns.
func Run(ctx context.Context, cfg Config) error {
	tunnelOff := cfg.TunnelListen == "-"
	if err := cfg.defaults(); err != nil {
		return err
	}
	log := cfg.Logger.With("agent", "allocator", "allocator", cfg.ID)
	switch {
	case cfg.TunnelLoader == nil && !tunnelOff:
		log.Info("no allocator certificate on this host: no node tunnel; proxies reach nodes at their published address", "publish_ip", cfg.PublishIP)
	case cfg.TunnelLoader != nil && tunnelOff:
		log.Warn("NODE TUNNEL DISABLED (--tunnel-addr -): proxies on other hosts cannot reach this host's nodes, which stay on " + cfg.PublishIP)
	}
	own, err := OwnCredential(cfg.StateDir, cfg.ID)
	if err != nil {
		return err
	}
	store := cfg.Store
	if store == nil {
		opts := cfg.ZK
		opts.Own = &own
		if opts.Role == "" {
			opts.Role = engine.RoleAllocator
		}
		if opts.Logger == nil {
			opts.Logger = cfg.Logger
		}
		store, err = engine.Connect(ctx, opts)
		if err != nil {
			return err
		}
		defer store.Close()
	}
	if cfg.PlatformID == "" {
		if cfg.PlatformID, err = platformID(ctx, store); err != nil {
			return err
		}
	}
	log = log.With("platform", cfg.PlatformID)
	em := newEgressMetrics(cfg.Registry)
	var eg *egress
	if cfg.TunnelListen != "" && cfg.Runtime == RuntimeDocker && cfg.NewRuntime == nil {
		if eg, err = newEgress(ctx, cfg, log, em); err != nil {
			return err
		}
		defer eg.close()
	}
	if cfg.IsolateNodes && eg == nil && cfg.Runtime == RuntimeDocker && cfg.NewRuntime == nil {
		return errors.New("--isolate-nodes needs the node tunnel (an allocator certificate on this host, --tunnel-addr not '-'): without it isolated nodes could not reach their peers")
	}
	rt, err := newRuntime(cfg, log, eg)
	if err != nil {
		return err
	}
	defer rt.Close()
	led, err := openLedger(filepath.Join(cfg.StateDir, "allocator-"+cfg.ID+"-volumes.json"))
	if err != nil {
		return err
	}
	st := agentkit.NewStatus()
	a := &agent{cfg: cfg, log: log, s: store, rt: rt, own: own, m: newMetrics(cfg.Registry), status: st, ledger: led,
		egress: eg, egressM: em, tracked: map[string]*tracked{}, statusZ: map[string]bool{}, decoded: map[string]decodedInstance{}, changed: map[string]struct{}{}, results: map[string]struct{}{}, unsettled: map[string]struct{}{}, createSem: make(chan struct{}, cfg.ParallelCreates), done: make(chan opResult, 64), trigger: make(chan struct{}, 1)}
	if cr, ok := rt.(credentialRuntime); ok {
		a.creds = newCredentials(store)
		cr.SetPlatformAuth(a.creds.platform)
	}
	if cfg.TunnelListen != "" {
		tun, err := a.startTunnel(ctx)
		if err != nil {
			return err
		}
		defer tun.wait()
	}
	bound, err := agentkit.Serve(ctx, cfg.MetricsAddr, cfg.Registry, st, log, nil)
	if err != nil {
		return err
	}
	return a.run(ctx, bound)
}

func newRuntime(cfg Config, log *slog.Logger, eg *egress) (Runtime, error) {
	if cfg.NewRuntime != nil {
		return cfg.NewRuntime(cfg)
	}
	if cfg.Runtime == RuntimeSim {
		return NewSim(HostInfo{}), nil
	}
	dc := DockerConfig{AllocatorID: cfg.ID, PlatformID: cfg.PlatformID, PublishIP: cfg.PublishIP, SnapshotDir: cfg.SnapshotDir,
		ImageRepo: cfg.ImageRepo, NodeBinary: cfg.NodeBinary, Labels: cfg.Labels, PidsLimit: cfg.PidsLimit, Logger: log,
		IsolateNodes: cfg.IsolateNodes}
	if eg != nil {
		dc.PeerEgress = eg.prepare
	}
	return NewDocker(dc)
}

// register writes the record and parents, and the ephemeral alive node.
func (a *agent) register(ctx context.Context) (*engine.Ephemeral, error) {
	rec := a.record()
	p := engine.AllocatorPath(a.cfg.ID)
	err := a.s.Create(ctx, p, rec)
	if errors.Is(err, engine.ErrExists) {
		var old engine.Allocator
		if _, gerr := a.s.GetJSON(ctx, p, &old); gerr == nil && old.Identity != "" && old.Identity != rec.Identity {
			return nil, fmt.Errorf("allocator record %s was registered with another identity: its credential file %s is not the one used first; restore that file, or have an admin delete the record (paddock allocator ...) before re-registering",
				p, OwnCredentialFile(a.cfg.StateDir, a.cfg.ID))
		}
		_, err = a.s.Set(ctx, p, rec, engine.AnyVersion)
	}
	if err != nil {
		if errors.Is(err, engine.ErrNoAuth) {
			return nil, fmt.Errorf("register allocator %s: %w (the allocator role credential is wrong, or the record belongs to another identity)", a.cfg.ID, err)
		}
		return nil, fmt.Errorf("register allocator %s: %w", a.cfg.ID, err)
	}
	for _, child := range []string{engine.InstancesPath(a.cfg.ID), engine.StatusesPath(a.cfg.ID)} {
		if err := a.s.Create(ctx, child, nil); err != nil && !errors.Is(err, engine.ErrExists) {
			return nil, fmt.Errorf("register allocator %s: create %s: %w", a.cfg.ID, child, err)
		}
	}
	a.recordWritten = rec
	return a.s.Register(ctx, engine.AllocatorAlivePath(a.cfg.ID), a.aliveData())
}

func (a *agent) record() engine.Allocator {
	tags := map[string]string{}
	for k, v := range a.cfg.Tags {
		tags[k] = v
	}
	for k, v := range a.settings.Tags {
		tags[k] = v
	}
	if len(tags) == 0 {
		tags = nil
	}
	return engine.Allocator{ID: a.cfg.ID, Zone: a.cfg.Zone, Host: a.cfg.Host, CapacityMB: a.capacity(), Tags: tags,
		Identity: a.own.DigestID(), Runtime: a.rt.Name(), TunnelAddr: a.tunnelAddr, PeerEgress: a.egress != nil, MetricsAddr: a.metricsAddr, Version: a.cfg.Version,
		RegisteredAt: a.started}
}

// capacity applies settings > flag > 85% of host memory.
func (a *agent) capacity() int {
	switch {
	case a.settings.CapacityMB > 0:
		return a.settings.CapacityMB
	case a.cfg.CapacityMB > 0:
		return a.cfg.CapacityMB
	}
	return DefaultCapacityMB(a.host.MemoryMB)
}

func sameTags(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return strings.TrimSpace(err.Error())
}
