package platform

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"paddock/agents/allocator"
	"paddock/engine"
	"paddock/engine/service"
	"paddock/engine/zkserver"
)

// stopGrace bounds the wait for the services to stop.
const stopGrace = 45 * time.Second

// mode is what differs between in-process and containers: where the
// director and the agents run and how their readiness is seen.
type mode interface {
	// claim takes the state dir (pid lock, or the containers' check);
	// an *AlreadyUpError when a platform runs from it.
	claim(ctx context.Context, r *run) error
	// images builds what the mode runs (node images, platform image).
	images(ctx context.Context, r *run) error
	director(ctx context.Context, r *run) error
	link(ctx context.Context, r *run) error
	agents(ctx context.Context, r *run) error
	// waitReady waits until every service serves.
	waitReady(ctx context.Context, r *run) error
	// serve runs after ready until ctx ends or a service fails.
	serve(ctx context.Context, r *run) error
	// outlives says whether the services run on after Run returns
	// (containers): the shutdown path then leaves them and their status.
	outlives() bool
}

// phase is one named step of Run.
type phase struct {
	name string
	run  func(context.Context) error
	// timed phases share the --start-timeout deadline.
	timed bool
}

// run is one Run of up: what the phases found and what the shutdown
// path must undo.
type run struct {
	cfg  Config
	dir  string
	log  *slog.Logger
	rec  *recorder
	mode mode
	lock *pidLock
	svc  *services

	zk      string // ZooKeeper's own address
	pcfg    engine.PlatformConfig
	admin   *engine.Store // the current admin store (direct, then through the tunnel)
	key     string
	keyFile string
	nodeBin string
	// closers run last to first on shutdown, after the services stopped.
	closers []func()
}

// phases are the steps of up, in order.
func (r *run) phases() []phase {
	return []phase{
		{name: "zookeeper", run: r.zookeeper},
		{name: "platform", run: r.platform},
		{name: "objectstore", run: r.objectStore},
		{name: "director", run: func(ctx context.Context) error { return r.mode.director(ctx, r) }, timed: true},
		{name: "link", run: func(ctx context.Context) error { return r.mode.link(ctx, r) }, timed: true},
		{name: "agents", run: func(ctx context.Context) error { return r.mode.agents(ctx, r) }, timed: true},
		{name: "ready", run: r.ready, timed: true},
	}
}

// Run brings the platform up and serves until ctx ends or a service
// fails. A platform already up from the state dir is an *AlreadyUpError;
// a Config to correct is an *agentkit.ConfigError.
func Run(ctx context.Context, cfg Config) (err error) {
	if err := cfg.Validate(); err != nil {
		return err
	}
	r := &run{cfg: cfg, dir: cfg.StateDir, log: cfg.Logger}
	r.rec = &recorder{dir: r.dir, log: r.log, progress: cfg.Progress}
	r.rec.st = Status{Pid: os.Getpid(), StartedAt: time.Now().UTC(), Label: Label(r.dir), Containers: cfg.Containers}
	// Services outlive ctx until the shutdown path stops them in order.
	r.svc = newServices(context.WithoutCancel(ctx), r.rec)
	if cfg.Containers {
		r.mode = &containers{}
		r.rec.st.Pid = 0
	} else {
		r.mode = &inProcess{}
	}
	if err := r.mode.claim(ctx, r); err != nil {
		r.svc.stop(r.log)
		return err
	}
	defer r.shutdown(&err)
	if err := os.MkdirAll(r.dir, 0o700); err != nil {
		return err
	}
	r.rec.save()
	var startCtx context.Context
	for _, ph := range r.phases() {
		pctx := ctx
		if ph.timed {
			if startCtx == nil {
				var cancel context.CancelFunc
				startCtx, cancel = context.WithTimeout(ctx, cfg.StartTimeout)
				defer cancel()
			}
			pctx = startCtx
		}
		if err := ph.run(pctx); err != nil {
			return err
		}
	}
	go r.dailyBackups(ctx)
	if err := r.mode.serve(ctx, r); err != nil {
		return fmt.Errorf("%w: see %s and run `paddock up` again", err, filepath.Join(r.dir, LogFile))
	}
	return nil
}

// shutdown is the one way out of Run: record a failure, stop the
// services and wait for them, then close the stores and release the
// pid lock.
func (r *run) shutdown(errp *error) {
	err := *errp
	if err != nil {
		r.rec.set(func(st *Status) { st.Error = err.Error() })
	}
	stopping := err != nil || !r.mode.outlives()
	if stopping {
		r.rec.set(func(st *Status) { st.Stopping, st.Ready, st.Step = true, false, "stopping" })
	}
	r.svc.stop(r.log)
	for i := len(r.closers) - 1; i >= 0; i-- {
		r.closers[i]()
	}
	if stopping {
		r.rec.step("stopped")
	}
	r.lock.release()
}

// onShutdown registers fn to run once the services stopped.
func (r *run) onShutdown(fn func()) { r.closers = append(r.closers, fn) }

// setAdmin makes s the admin store, closing the previous one at once.
func (r *run) setAdmin(s *engine.Store) {
	if old := r.admin; old != nil {
		old.Close()
	}
	r.admin = s
}

// timeout turns the end of a start phase's ctx into an error naming
// what did not happen (or the cancellation when the operator stopped).
func timeout(ctx context.Context, what string) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%s within --start-timeout", what)
	}
	return ctx.Err()
}

// zookeeper starts (or finds) ZooKeeper in <state-dir>/zookeeper.
func (r *run) zookeeper(ctx context.Context) error {
	zkDir := filepath.Join(r.dir, "zookeeper")
	if st, ok := zkserver.ServingIn(zkDir); ok {
		r.zk = st.Addr
	}
	if r.zk != "" {
		r.rec.step("ZooKeeper already serving on %s", r.zk)
	} else {
		r.rec.step("starting ZooKeeper (data in %s)", zkDir)
		addr, err := startZooKeeper(ctx, r.dir, r.cfg.ZKPort)
		if err != nil {
			return err
		}
		r.zk = addr
		r.rec.step("ZooKeeper serving on %s", r.zk)
	}
	// The bootstrap (platform, admin API key) talks to ZooKeeper
	// directly: the director, and so its tunnel, starts after it. The
	// config file says so until the tunnel is up.
	if err := WriteConfigKeys(r.configFile(), map[string]any{"zk": r.zk, "zk-tls": false}); err != nil {
		return err
	}
	r.rec.set(func(st *Status) { st.ZooKeeper = r.zk })
	r.rec.service("zookeeper", func(u *Service) { u.Kind, u.Addr, u.State = "zookeeper", r.zk, "running" })
	return nil
}

// startZooKeeper starts the state dir's standalone ZooKeeper, detached,
// on port (0: a free one) with the platform's super password, and
// returns its address.
func startZooKeeper(ctx context.Context, dir string, port int) (string, error) {
	super, err := zkSuperPassword(dir)
	if err != nil {
		return "", err
	}
	zctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cl, err := zkserver.Start(zctx, zkserver.Config{Dir: filepath.Join(dir, "zookeeper"), Servers: 1, ClientPort: port, Detach: true, SuperPassword: super})
	if err != nil {
		return "", fmt.Errorf("start ZooKeeper: %w (is Java and Debian's zookeeper package installed? run scripts/setup.sh; is port %d free? choose another with --zk-port)", err, port)
	}
	return cl.ConnectString(), nil
}

func (r *run) configFile() string { return filepath.Join(r.dir, "config.yaml") }

// platform creates (or finds) the platform in ZooKeeper, builds the
// images the mode runs and keeps the admin API key.
func (r *run) platform(ctx context.Context) error {
	zones := r.cfg.zoneNames()
	r.rec.step("creating the platform (zones %s)", strings.Join(zones, ", "))
	ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
	res, err := Init(ictx, InitConfig{ZooKeeper: r.zk, StateDir: r.dir, Zones: zones, Timeout: r.cfg.Timeout, Logger: r.log})
	cancel()
	if err != nil {
		return fmt.Errorf("create the platform: %w", err)
	}
	if !res.Created {
		r.rec.step("platform found in ZooKeeper; reusing it")
	}
	admin, err := r.connect(ctx, engine.RoleAdmin, nil, "up")
	if err != nil {
		return err
	}
	r.setAdmin(admin)
	r.onShutdown(func() { r.setAdmin(nil) })
	if r.pcfg, _, err = admin.Platform(ctx); err != nil {
		return fmt.Errorf("read the platform config: %w", err)
	}
	if err := r.mode.images(ctx, r); err != nil {
		return err
	}
	svc := service.New(admin, service.WithLogger(r.log))
	if r.key, r.keyFile, err = ensureAPIKey(ctx, svc, r.dir); err != nil {
		return err
	}
	r.rec.set(func(st *Status) { st.APIKeyFile = r.keyFile })
	return nil
}

// connect opens a store as role: through the link when given, else
// directly to ZooKeeper.
func (r *run) connect(ctx context.Context, role engine.Role, l *zkLink, agent string) (*engine.Store, error) {
	cred, err := engine.LoadCredential(engine.CredentialFile(r.dir, role))
	if err != nil {
		return nil, err
	}
	log := r.log.With("agent", agent)
	if l != nil {
		s, err := engine.Connect(ctx, l.options(role, cred, log))
		if err != nil {
			return nil, fmt.Errorf("connect as %s through the director's tunnel %s: %w", role, l.servers, err)
		}
		return s, nil
	}
	s, err := engine.Connect(ctx, engine.Options{Servers: r.zk, Role: role, Credential: cred, ConnectTimeout: r.cfg.Timeout, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("connect as %s: %w", role, err)
	}
	return s, nil
}

// ready waits for the services, points the CLI of this host at the
// platform and says where everything listens.
func (r *run) ready(ctx context.Context) error {
	r.rec.step("waiting for the services to be ready")
	if err := r.mode.waitReady(ctx, r); err != nil {
		return err
	}
	st := r.rec.get()
	// The CLI on this host (status, console, deployment, …) reaches
	// ZooKeeper where the agents do: zk is the tunnel, zk-tls picks this
	// host's role certificate.
	zk := r.zk
	if st.Tunnel != "" {
		zk = st.Tunnel
	}
	if err := WriteConfigKeys(r.configFile(), map[string]any{
		"zk": zk, "zk-tls": st.Tunnel != "", "api-url": st.APIURL, "api-key": r.key, "api-key-file": r.keyFile,
	}); err != nil {
		return err
	}
	r.rec.set(func(st *Status) { st.Ready, st.Step = true, "ready" })
	r.log.Info("paddock is up", "api", st.APIURL, "proxy", st.ProxyURL, "zookeeper", r.zk, "zookeeper_tunnel", st.Tunnel)
	if r.cfg.OnReady != nil {
		r.cfg.OnReady(r.rec.get())
	}
	return nil
}

// ensureNodeImages builds the node images that are missing or were
// built from another binary, from this binary when it is static. It
// keeps the binary for the allocators (they rebuild an image someone
// removed).
func (r *run) ensureNodeImages(ctx context.Context) error {
	if r.cfg.Runtime != allocator.RuntimeDocker {
		return nil
	}
	cli, err := dockerClient(ctx, "pass --runtime sim to run no containers")
	if err != nil {
		return err
	}
	defer cli.Close()
	bin := ""
	if static, _ := allocator.IsStaticBinary(r.cfg.Binary); static {
		bin = r.cfg.Binary
	}
	for _, ver := range r.pcfg.Versions {
		ref := allocator.ImageRef(allocator.DefaultImageRepo, ver)
		current, err := allocator.ImageUpToDate(ctx, cli, ref, bin)
		if err != nil {
			return err
		}
		if current {
			r.rec.step("node image %s present", ref)
			continue
		}
		if bin == "" {
			return fmt.Errorf("node image %s is missing and this binary cannot go into an image: %s", ref, allocator.StaticHint)
		}
		r.rec.step("building node image %s", ref)
		if err := allocator.BuildImage(ctx, cli, allocator.BuildOptions{Binary: bin, Repo: allocator.DefaultImageRepo, Version: ver,
			Labels: map[string]string{LabelUp: r.rec.get().Label}}, nil); err != nil {
			return fmt.Errorf("build node image %s: %w", ref, err)
		}
	}
	r.nodeBin = bin
	return nil
}

// services are the agents running in this process.
type services struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	errc   chan error
	rec    *recorder
}

func newServices(parent context.Context, rec *recorder) *services {
	ctx, cancel := context.WithCancel(parent)
	return &services{ctx: ctx, cancel: cancel, errc: make(chan error, 64), rec: rec}
}

// start runs fn as service name until the shutdown path stops it; a
// service that fails on its own is reported on errc.
func (s *services) start(name, kind string, fn func(context.Context) error) {
	s.rec.service(name, func(u *Service) { u.Kind, u.State = kind, "starting" })
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		err := fn(s.ctx)
		failed := err != nil && s.ctx.Err() == nil
		s.rec.service(name, func(u *Service) {
			u.State = "stopped"
			if failed {
				u.State, u.Error = "failed", err.Error()
			}
		})
		if failed {
			s.errc <- fmt.Errorf("%s: %w", name, err)
		}
	}()
}

// ready marks service name running, with where it listens.
func (s *services) ready(name, addr, metrics string) {
	s.rec.service(name, func(u *Service) {
		u.State = "running"
		if addr != "" {
			u.Addr = addr
		}
		if metrics != "" {
			u.Metrics = metrics
		}
	})
}

// stop cancels the services and waits for them (bounded).
func (s *services) stop(log *slog.Logger) {
	s.cancel()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(stopGrace):
		log.Warn("services did not stop within the grace period; exiting anyway", "grace", stopGrace)
	}
}
