package cmd

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/docker/docker/client"
	"github.com/spf13/cobra"

	"paddock/agents/allocator"
	"paddock/agents/api"
	"paddock/agents/constructor"
	"paddock/agents/director"
	"paddock/agents/proxy"
	"paddock/engine"
	"paddock/engine/service"
	"paddock/engine/zkserver"
)

// `paddock up` is the embedded default: one command brings up a whole
// platform on this host. `--headless` is the supervisor: it starts (or
// reuses) a detached ZooKeeper, creates the platform, builds missing node
// images, then runs the constructor, the API, the proxy and one
// allocator per zone in this process — the same Config/Run code as the
// standalone agents — until SIGINT/SIGTERM. Without --headless, `up`
// starts that supervisor detached (logs in <state-dir>/logs/up.log),
// shows its progress, then opens the console; quitting the console
// leaves the platform running. A second `up` finds the supervisor by
// its locked pid file and attaches. `paddock down` stops it.

// Files in the state dir.
const (
	upPidFile    = "up.pid"
	upStatusFile = "up.json"
	upLogFile    = "logs/up.log"
	apiKeyFile   = "credentials/api-key"
	// labelUp marks every Docker object of allocators started by up,
	// so `paddock down` removes exactly those.
	labelUp = "paddock.up"
)

// UpService is one service of the platform as `up` reports it.
type UpService struct {
	Name    string `json:"name"`
	Kind    string `json:"kind"`
	Addr    string `json:"addr,omitempty"`
	Metrics string `json:"metrics,omitempty"`
	State   string `json:"state"`
	Error   string `json:"error,omitempty"`
}

// UpStatus is <state-dir>/up.json: the supervisor's progress and where
// everything listens.
type UpStatus struct {
	Pid       int       `json:"pid"`
	StartedAt time.Time `json:"started_at"`
	Step      string    `json:"step"`
	Ready     bool      `json:"ready"`
	Stopping  bool      `json:"stopping,omitempty"`
	Error     string    `json:"error,omitempty"`
	ZooKeeper string    `json:"zookeeper"`
	// Tunnel is the director's mTLS tunnel the agents reach ZooKeeper
	// through (empty: they connect directly).
	Tunnel     string      `json:"zookeeper_tunnel,omitempty"`
	APIURL     string      `json:"api_url,omitempty"`
	ProxyURL   string      `json:"proxy_url,omitempty"`
	APIKeyFile string      `json:"api_key_file,omitempty"`
	Label      string      `json:"label"`
	Containers bool        `json:"containers,omitempty"`
	Missing    []string    `json:"not_available,omitempty"`
	Services   []UpService `json:"services"`
}

func newUpCmd(app *App) *cobra.Command {
	c := &cobra.Command{
		Use:   "up",
		Short: "Start a whole platform on this host and open the console",
		Long: `Start, on this host: ZooKeeper (detached, data in <state-dir>/zookeeper),
the constructor, the API, the proxy and one allocator per zone, all in
one supervisor process running the same code as the separate agents.
Node images are built first when missing (from this static binary).
~/.paddock/config.yaml is written so the other commands find the
platform, with an admin API key. ZooKeeper listens on loopback only:
once the director serves, every agent and the CLI reach it through the
director's mutual-TLS tunnel (--director-tunnel-addr) with this host's
certificate of its role (<state-dir>/tls, issued and renewed by up).

Without --headless the supervisor runs detached and the console opens;
quitting the console leaves the platform running. A second 'paddock up'
attaches to the running platform. 'paddock down' stops it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if app.V.GetBool("containers") {
				return runContainers(cmd.Context(), app)
			}
			if len(app.V.GetStringMapString("scale")) > 0 {
				return usageErr("--scale applies to --containers: the in-process mode runs one of each service")
			}
			if st, err := readUpStatus(app.StateDir()); err == nil && st.Containers && st.Ready {
				// The platform runs in containers: attach to it.
				return runContainers(cmd.Context(), app)
			}
			if app.V.GetBool("headless") {
				return runHeadless(cmd.Context(), app)
			}
			return runUpConsole(cmd.Context(), app)
		},
	}
	f := c.Flags()
	f.Bool("headless", false, "no console: print where everything listens and stay in the foreground until SIGINT/SIGTERM")
	f.Int("zones", 3, "number of zones (zone-1 … zone-N), one allocator each")
	f.Int("allocators-per-zone", 1, "allocators per zone")
	f.String("allocator-memory", "4g", "memory each allocator offers to nodes")
	f.Int("zk-port", 2181, "ZooKeeper client port (0: a free port)")
	f.Int("api-port", 12400, "API HTTP port (0: a free port)")
	f.Int("proxy-port", 9200, "proxy HTTP port (0: a free port)")
	f.String("director-tunnel-addr", director.DefaultTunnelAddr, "director's mTLS tunnel in front of ZooKeeper ('-' disables)")
	f.String("director-enroll-addr", director.DefaultEnrollAddr, "director's enrollment endpoint, HTTPS ('-' disables)")
	f.Duration("cert-ttl", director.DefaultCertTTL, "lifetime of the agents' tunnel certificates (renewed at 2/3)")
	f.String("runtime", allocator.RuntimeDocker, "allocator runtime: docker, or sim (no containers)")
	f.StringToString("label", nil, "extra labels on every Docker object the allocators create (tests: paddock.test=<name>)")
	f.Duration("start-timeout", 3*time.Minute, "how long to wait for the platform to be ready")
	f.Bool("containers", false, "run every platform service in its own container of paddock/platform:<version> (ZooKeeper stays a host process)")
	f.StringToString("scale", nil, "with --containers: containers per service, such as constructor=2,proxy=2")
	f.String("theme", "dark", "console theme")
	f.Int("screen", 1, "console screen to open")
	return c
}

// upLabel names this platform's Docker objects: one value per state dir.
func upLabel(stateDir string) string {
	abs, err := filepath.Abs(stateDir)
	if err != nil {
		abs = stateDir
	}
	sum := sha256.Sum256([]byte(abs))
	return hex.EncodeToString(sum[:6])
}

// --- pid file and lock --------------------------------------------------

// lockPid takes the exclusive lock of <state>/up.pid and writes our pid.
// The lock lives as long as the file descriptor: the kernel drops it when
// the supervisor dies, so a stale pid file never blocks a new start.
func lockPid(stateDir string) (*os.File, error) {
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(stateDir, upPidFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, errRunning
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return f, nil
}

var errRunning = errors.New("a platform supervisor already runs from this state dir")

// runningPid returns the supervisor's pid if one holds the lock.
func runningPid(stateDir string) (int, bool) {
	f, err := os.OpenFile(filepath.Join(stateDir, upPidFile), os.O_RDWR, 0)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		return 0, false
	}
	b, _ := io.ReadAll(f)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, false
	}
	return pid, true
}

func readUpStatus(stateDir string) (UpStatus, error) {
	var st UpStatus
	b, err := os.ReadFile(filepath.Join(stateDir, upStatusFile))
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal(b, &st)
}

// --- the supervisor -------------------------------------------------------

type supervisor struct {
	app    *App
	log    *slog.Logger
	dir    string
	mu     sync.Mutex
	saveMu sync.Mutex
	st     UpStatus
	print  bool
}

// save writes up.json; saves are serialised so an older state never
// overwrites a newer one.
func (s *supervisor) save() {
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	s.mu.Lock()
	b, _ := json.MarshalIndent(s.st, "", "  ")
	s.mu.Unlock()
	tmp := filepath.Join(s.dir, upStatusFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err == nil {
		os.Rename(tmp, filepath.Join(s.dir, upStatusFile))
	}
}

// step records and shows progress.
func (s *supervisor) step(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.mu.Lock()
	s.st.Step = msg
	s.mu.Unlock()
	s.save()
	s.log.Info("up: " + msg)
	if s.print {
		fmt.Fprintf(s.app.Err, "· %s\n", msg)
	}
}

// set changes the status under the lock and saves it.
func (s *supervisor) set(fn func(*UpStatus)) {
	s.mu.Lock()
	fn(&s.st)
	s.mu.Unlock()
	s.save()
}

func (s *supervisor) service(name string, fn func(*UpService)) {
	s.mu.Lock()
	found := false
	for i := range s.st.Services {
		if s.st.Services[i].Name == name {
			fn(&s.st.Services[i])
			found = true
		}
	}
	if !found {
		u := UpService{Name: name}
		fn(&u)
		s.st.Services = append(s.st.Services, u)
	}
	s.mu.Unlock()
	s.save()
}

func (s *supervisor) fail(err error) error {
	s.mu.Lock()
	s.st.Error = err.Error()
	s.mu.Unlock()
	s.save()
	return err
}

// runHeadless runs the platform in this process until ctx ends.
func runHeadless(ctx context.Context, app *App) error {
	dir := app.StateDir()
	v := app.V
	lock, err := lockPid(dir)
	if errors.Is(err, errRunning) {
		// Idempotent: the platform runs; say where.
		st, _ := readUpStatus(dir)
		pid, _ := runningPid(dir)
		fmt.Fprintf(app.Out, "paddock is already up (supervisor pid %d)\n", pid)
		printWhere(app.Out, st)
		return nil
	}
	if err != nil {
		return fmt.Errorf("lock %s: %w", filepath.Join(dir, upPidFile), err)
	}
	defer func() {
		os.Remove(filepath.Join(dir, upPidFile))
		lock.Close()
	}()
	s := &supervisor{app: app, log: app.Log, dir: dir, print: true}
	s.st = UpStatus{Pid: os.Getpid(), StartedAt: time.Now().UTC(), Label: upLabel(dir)}
	if os.Getenv("PADDOCK_UP_CHILD") == "1" {
		s.print = false // the parent shows progress from up.json
	}
	s.save()

	pr, err := prepare(ctx, s)
	if err != nil {
		return s.fail(err)
	}
	// The bootstrap's direct admin store closes once the tunnel is up.
	bootstrap := pr.admin
	defer func() {
		if bootstrap != nil {
			bootstrap.Close()
		}
	}()
	zkAddr, cfg, key, keyFile, nodeBin := pr.zk, pr.cfg, pr.key, pr.keyFile, pr.nodeBin
	zoneNames, perZone, memMB, runtime := pr.zones, pr.perZone, pr.memMB, pr.runtime

	// 5. Services, in this process.
	sctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	var wg sync.WaitGroup
	errc := make(chan error, 16)
	start := func(name, kind string, run func(context.Context) error) {
		s.service(name, func(u *UpService) { u.Kind, u.State = kind, "starting" })
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := run(sctx)
			s.service(name, func(u *UpService) {
				u.State = "stopped"
				if err != nil && sctx.Err() == nil {
					u.State, u.Error = "failed", err.Error()
				}
			})
			if err != nil && sctx.Err() == nil {
				errc <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}
	ready := func(name, addr, metrics string) {
		s.service(name, func(u *UpService) {
			u.State = "running"
			if addr != "" {
				u.Addr = addr
			}
			if metrics != "" {
				u.Metrics = metrics
			}
		})
	}
	s.step("starting the director")
	dirCreds := engine.CredentialSet{}
	for _, r := range engine.Roles {
		if c, err := engine.LoadCredential(engine.CredentialFile(dir, r)); err == nil {
			dirCreds[r] = c
		}
	}
	super, _ := zkSuperPassword(dir)
	dirReady := make(chan struct{})
	var dirOnce sync.Once
	var dirAddrs director.Addrs
	start("director", "director", func(ctx context.Context) error {
		return director.Run(ctx, director.Config{ID: "director-up", StateDir: dir,
			Store:       engine.Options{Servers: zkAddr, Credential: dirCreds[engine.RoleDirector], ConnectTimeout: v.GetDuration("timeout"), Logger: app.Log.With("service", "director")},
			Credentials: dirCreds, ZooKeeper: zkAddr, SuperPassword: super,
			TunnelAddr: v.GetString("director-tunnel-addr"), EnrollAddr: v.GetString("director-enroll-addr"),
			CertTTL:     v.GetDuration("cert-ttl"),
			MetricsAddr: "127.0.0.1:0", Logger: app.Log.With("service", "director"),
			Ready: func(a director.Addrs) {
				ready("director", "tunnel "+a.Tunnel+", enroll "+a.Enroll, a.Metrics)
				dirOnce.Do(func() { dirAddrs = a; close(dirReady) })
			},
		})
	})

	// The agents reach ZooKeeper through the director's tunnel: wait
	// for it, then issue this host's role certificates.
	wctx, cancel := context.WithTimeout(ctx, v.GetDuration("start-timeout"))
	defer cancel()
	select {
	case <-dirReady:
	case err := <-errc:
		stop()
		wg.Wait()
		return s.fail(err)
	case <-wctx.Done():
		stop()
		wg.Wait()
		return s.fail(fmt.Errorf("the director did not start within --start-timeout: are its ports free? choose others with --director-tunnel-addr/--director-enroll-addr"))
	}
	link, err := linkAgents(sctx, app, dir, zkAddr, dirAddrs)
	if err != nil {
		stop()
		wg.Wait()
		return s.fail(err)
	}
	if link.tunnel {
		s.set(func(st *UpStatus) { st.Tunnel = link.servers })
		s.step("agents reach ZooKeeper through the director's tunnel at %s", link.servers)
	}
	adminCred, err := app.Credential(engine.RoleAdmin)
	if err != nil {
		return s.fail(err)
	}
	// From here on the supervisor's own admin store goes through the
	// tunnel too; the direct one served the bootstrap only.
	admin, err := engine.Connect(ctx, link.options(engine.RoleAdmin, adminCred, app.Log.With("service", "api")))
	if err != nil {
		stop()
		wg.Wait()
		return s.fail(fmt.Errorf("connect as admin: %w", err))
	}
	defer admin.Close()
	bootstrap.Close()
	bootstrap = nil

	s.step("starting the constructor")
	consCred, err := app.Credential(engine.RoleConstructor)
	if err != nil {
		return s.fail(err)
	}
	cons, err := engine.Connect(ctx, link.options(engine.RoleConstructor, consCred, app.Log.With("service", "constructor")))
	if err != nil {
		stop()
		wg.Wait()
		return s.fail(fmt.Errorf("connect as constructor: %w", err))
	}
	defer cons.Close()
	start("constructor", "constructor", func(ctx context.Context) error {
		return constructor.Run(ctx, constructor.Config{Store: cons, ID: "constructor-up", MetricsAddr: "127.0.0.1:0",
			NodeLoader: link.loader(engine.RoleConstructor), Logger: app.Log.With("service", "constructor"), Ready: func(m string) { ready("constructor", "", m) }})
	})

	s.step("starting the API")
	apiURL := make(chan string, 1)
	start("api", "api", func(ctx context.Context) error {
		return api.Run(ctx, api.Config{Store: admin, Addr: fmt.Sprintf("127.0.0.1:%d", v.GetInt("api-port")), MetricsAddr: "127.0.0.1:0",
			Logger: app.Log.With("service", "api"),
			OnListen: func(h, _ string) {
				ready("api", h, "")
				apiURL <- "http://" + h
			}})
	})

	s.step("starting the proxy")
	proxyCred, err := app.Credential(engine.RoleProxy)
	if err != nil {
		return s.fail(err)
	}
	proxyID := "proxy-up"
	start("proxy", "proxy", func(ctx context.Context) error {
		return proxy.Run(ctx, proxy.Config{ID: proxyID, HTTPAddr: fmt.Sprintf("127.0.0.1:%d", v.GetInt("proxy-port")),
			Domain: cfg.Domain, CacheFile: filepath.Join(dir, "proxy-routes.json"), MetricsAddr: "127.0.0.1:0",
			Logger: app.Log.With("service", "proxy"),
			// mTLS to the allocators' node tunnels with the proxy's certificate.
			BackendLoader: link.loader(engine.RoleProxy),
			Connect: func(ctx context.Context) (*engine.Store, error) {
				return engine.Connect(ctx, link.options(engine.RoleProxy, proxyCred, app.Log.With("service", "proxy")))
			}})
	})

	allocCred, err := app.Credential(engine.RoleAllocator)
	if err != nil {
		return s.fail(err)
	}
	labels := map[string]string{labelUp: s.st.Label}
	for k, val := range v.GetStringMapString("label") {
		labels[k] = val
	}
	var allocIDs []string
	for _, z := range zoneNames {
		for n := 1; n <= perZone; n++ {
			id := fmt.Sprintf("alloc-%s-%d", z, n)
			allocIDs = append(allocIDs, id)
			s.step("starting allocator %s in %s (%s)", id, z, engine.FormatSize(memMB))
			acfg := allocator.Config{ID: id, Zone: z, CapacityMB: memMB, StateDir: filepath.Join(dir, "allocators", id),
				SnapshotDir: filepath.Join(dir, "snapshots"), Runtime: runtime, NodeBinary: nodeBin, Labels: labels,
				MetricsAddr: "127.0.0.1:0", Logger: app.Log.With("service", id), Version: Version,
				ZK:      link.options(engine.RoleAllocator, allocCred, app.Log.With("service", id)),
				OnReady: func(m string) { ready(id, "", m) },
				// Each allocator fronts its nodes with an mTLS tunnel that
				// admits proxies (and the constructor); several share this
				// host, so each takes a free loopback port.
				TunnelLoader: link.loader(engine.RoleAllocator), TunnelListen: "127.0.0.1:0",
			}
			start(id, "allocator", func(ctx context.Context) error { return allocator.Run(ctx, acfg) })
		}
	}

	// 6. Wait until every service is ready.
	s.step("waiting for the services to be ready")
	select {
	case u := <-apiURL:
		s.set(func(st *UpStatus) { st.APIURL = u })
	case err := <-errc:
		stop()
		wg.Wait()
		return s.fail(err)
	case <-wctx.Done():
		stop()
		wg.Wait()
		return s.fail(fmt.Errorf("the API did not start within --start-timeout: see %s", filepath.Join(dir, upLogFile)))
	}
	proxyAddr, err := waitProxy(wctx, admin, proxyID, errc)
	if err != nil {
		stop()
		wg.Wait()
		return s.fail(err)
	}
	ready("proxy", proxyAddr, "")
	s.set(func(st *UpStatus) { st.ProxyURL = "http://" + proxyAddr })
	if err := waitAllocators(wctx, admin, allocIDs, errc); err != nil {
		stop()
		wg.Wait()
		return s.fail(err)
	}
	for _, id := range allocIDs {
		ready(id, "", "")
	}
	// The CLI on this host (status, console, deployment, …) goes
	// through the tunnel too: zk is the tunnel, zk-tls picks this host's
	// role certificate.
	if err := writeConfigKeys(filepath.Join(dir, "config.yaml"), map[string]any{
		"zk": link.servers, "zk-tls": link.tunnel, "api-url": s.st.APIURL, "api-key": key, "api-key-file": keyFile,
	}); err != nil {
		stop()
		wg.Wait()
		return s.fail(err)
	}
	s.mu.Lock()
	s.st.Ready = true
	s.st.Step = "ready"
	s.mu.Unlock()
	s.save()
	if s.print {
		printWhere(app.Out, s.st)
	}
	app.Log.Info("paddock is up", "api", s.st.APIURL, "proxy", s.st.ProxyURL, "zookeeper", zkAddr, "zookeeper_tunnel", s.st.Tunnel)

	// 7. Until SIGINT/SIGTERM (or a service failing).
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
		app.Log.Error("a platform service failed; stopping", "err", runErr)
	}
	s.mu.Lock()
	s.st.Stopping, s.st.Ready, s.st.Step = true, false, "stopping"
	s.mu.Unlock()
	s.save()
	stop()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(45 * time.Second):
		app.Log.Warn("services did not stop within 45s; exiting anyway")
	}
	s.step("stopped")
	if runErr != nil {
		return fmt.Errorf("%w: see %s and run `paddock up` again", runErr, filepath.Join(dir, upLogFile))
	}
	return nil
}

// prepared is what both modes of up share once the platform exists.
type prepared struct {
	zk, key, keyFile, nodeBin, runtime string
	cfg                                engine.PlatformConfig
	admin                              *engine.Store
	zones                              []string
	perZone, memMB                     int
}

// prepare validates the flags, starts (or finds) ZooKeeper, creates (or
// finds) the platform, builds missing node images and keeps the admin
// API key.
func prepare(ctx context.Context, s *supervisor) (*prepared, error) {
	app, v, dir := s.app, s.app.V, s.dir
	zones := v.GetInt("zones")
	if zones < 1 || zones > 9 {
		return nil, (usageErr("--zones %d: use 1 to 9", zones))
	}
	perZone := v.GetInt("allocators-per-zone")
	if perZone < 1 {
		return nil, (usageErr("--allocators-per-zone %d: use 1 or more", perZone))
	}
	memMB, err := engine.ParseSize(v.GetString("allocator-memory"))
	if err != nil {
		return nil, (usageErr("--allocator-memory: %v", err))
	}
	runtime := v.GetString("runtime")

	// 1. ZooKeeper.
	zkDir := filepath.Join(dir, "zookeeper")
	zkAddr := ""
	for _, st := range zkserver.StatusDir(zkDir) {
		if st.Status == "serving" {
			zkAddr = st.Addr
		}
	}
	if zkAddr != "" {
		s.step("ZooKeeper already serving on %s", zkAddr)
	} else {
		s.step("starting ZooKeeper (data in %s)", zkDir)
		zctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		super, err := zkSuperPassword(dir)
		if err != nil {
			cancel()
			return nil, err
		}
		cl, err := zkserver.Start(zctx, zkserver.Config{Dir: zkDir, Servers: 1, ClientPort: v.GetInt("zk-port"), Detach: true, SuperPassword: super})
		cancel()
		if err != nil {
			return nil, (fmt.Errorf("start ZooKeeper: %w (is Java and Debian's zookeeper package installed? run scripts/setup.sh; is port %d free? choose another with --zk-port)", err, v.GetInt("zk-port")))
		}
		zkAddr = cl.ConnectString()
		s.step("ZooKeeper serving on %s", zkAddr)
	}
	// The bootstrap (platform, admin API key) talks to ZooKeeper
	// directly: the director, and so its tunnel, starts after it. The
	// config file says so until the tunnel is up.
	v.Set("zk", zkAddr)
	v.Set("zk-tls", false)
	if err := writeConfigKeys(filepath.Join(dir, "config.yaml"), map[string]any{"zk": zkAddr, "zk-tls": false}); err != nil {
		return nil, err
	}
	s.set(func(st *UpStatus) { st.ZooKeeper = zkAddr })
	s.service("zookeeper", func(u *UpService) { u.Kind, u.Addr, u.State = "zookeeper", zkAddr, "running" })

	// 2. The platform in ZooKeeper.
	var zoneNames []string
	for i := 1; i <= zones; i++ {
		zoneNames = append(zoneNames, fmt.Sprintf("zone-%d", i))
	}
	s.step("creating the platform (zones %s)", strings.Join(zoneNames, ", "))
	ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
	res, err := InitPlatform(ictx, app, zoneNames)
	cancel()
	if err != nil {
		return nil, (fmt.Errorf("create the platform: %w", err))
	}
	if !res.Created {
		s.step("platform found in ZooKeeper; reusing it")
	}
	admin, err := app.Connect(ctx, engine.RoleAdmin, nil)
	if err != nil {
		return nil, err
	}
	done := false
	defer func() {
		if !done {
			admin.Close()
		}
	}()
	cfg, _, err := admin.Platform(ctx)
	if err != nil {
		return nil, (fmt.Errorf("read the platform config: %w", err))
	}

	// 3. Node images.
	nodeBin := ""
	if runtime == allocator.RuntimeDocker {
		nodeBin, err = ensureImages(ctx, s, cfg.Versions, map[string]string{labelUp: s.st.Label})
		if err != nil {
			return nil, err
		}
	}

	// 4. Admin API key.
	svc := service.New(admin, service.WithLogger(app.Log))
	key, keyFile, err := ensureAPIKey(ctx, svc, dir)
	if err != nil {
		return nil, err
	}
	s.set(func(st *UpStatus) { st.APIKeyFile = keyFile })

	done = true
	return &prepared{zk: zkAddr, key: key, keyFile: keyFile, nodeBin: nodeBin, runtime: runtime, cfg: cfg, admin: admin,
		zones: zoneNames, perZone: perZone, memMB: memMB}, nil
}

// printWhere tells the operator where everything listens.
func printWhere(w io.Writer, st UpStatus) {
	fmt.Fprintf(w, "paddock is up\n")
	fmt.Fprintf(w, "  API        %s\n", st.APIURL)
	fmt.Fprintf(w, "  proxy      %s   (curl http://<deployment-id>.localhost:%s/)\n", st.ProxyURL, portOf(st.ProxyURL))
	if st.Tunnel != "" {
		fmt.Fprintf(w, "  ZooKeeper  %s (loopback only; agents and CLI through the director's mTLS tunnel %s)\n", st.ZooKeeper, st.Tunnel)
	} else {
		fmt.Fprintf(w, "  ZooKeeper  %s\n", st.ZooKeeper)
	}
	fmt.Fprintf(w, "  admin key  %s\n", st.APIKeyFile)
	var allocs []string
	for _, s := range st.Services {
		if s.Kind == "allocator" {
			allocs = append(allocs, s.Name)
		}
	}
	sort.Strings(allocs)
	fmt.Fprintf(w, "  allocators %s\n", strings.Join(allocs, ", "))
	for _, s := range st.Services {
		if s.Kind == "director" && s.Addr != "" {
			fmt.Fprintf(w, "  director   %s\n", s.Addr)
		}
		if s.Kind == "proxy" && s.Addr != "" && "http://"+s.Addr != st.ProxyURL {
			fmt.Fprintf(w, "  proxy      http://%s (%s)\n", s.Addr, s.Name)
		}
	}
	for _, m := range st.Missing {
		fmt.Fprintf(w, "  note       %s\n", m)
	}
	fmt.Fprintf(w, "console: paddock console · status: paddock status · stop: paddock down\n")
}

func portOf(url string) string {
	if i := strings.LastIndex(url, ":"); i >= 0 {
		return url[i+1:]
	}
	return ""
}

// ensureImages builds the node images that are missing, from this
// binary when it is static. It returns the binary for the allocators
// (they rebuild an image someone removed).
func ensureImages(ctx context.Context, s *supervisor, versions []string, labels map[string]string) (string, error) {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return "", fmt.Errorf("Docker client: %w (is Docker installed and running?)", err)
	}
	defer cli.Close()
	if _, err := cli.Ping(ctx); err != nil {
		return "", fmt.Errorf("cannot reach Docker: %w (start the Docker daemon, or pass --runtime sim to run no containers)", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	static, _ := allocator.IsStaticBinary(exe)
	bin := ""
	if static {
		bin = exe
	}
	for _, ver := range versions {
		ref := allocator.ImageRef(allocator.DefaultImageRepo, ver)
		current, err := allocator.ImageUpToDate(ctx, cli, ref, bin)
		if err != nil {
			return "", err
		}
		if current {
			s.step("node image %s present", ref)
			continue
		}
		if bin == "" {
			return "", fmt.Errorf("node image %s is missing and this binary cannot go into an image: %s", ref, allocator.StaticHint)
		}
		s.step("building node image %s", ref)
		if err := allocator.BuildImage(ctx, cli, allocator.BuildOptions{Binary: bin, Repo: allocator.DefaultImageRepo, Version: ver, Labels: labels}, nil); err != nil {
			return "", fmt.Errorf("build node image %s: %w", ref, err)
		}
	}
	return bin, nil
}

// ensureAPIKey keeps one admin API key for the CLI in the state dir: the
// existing one when it still authenticates, else a new one.
func ensureAPIKey(ctx context.Context, svc *service.Service, dir string) (string, string, error) {
	file := filepath.Join(dir, apiKeyFile)
	if b, err := os.ReadFile(file); err == nil {
		key := strings.TrimSpace(string(b))
		if _, err := svc.AuthenticateKey(ctx, key); err == nil {
			return key, file, nil
		}
	}
	_, key, err := svc.CreateAPIKeyBy(ctx, "paddock-up", service.RolePlatformAdmin, "paddock-up")
	if err != nil {
		return "", "", fmt.Errorf("create the admin API key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(file, []byte(key+"\n"), 0o600); err != nil {
		return "", "", err
	}
	return key, file, nil
}

// waitProxy waits for the proxy's registration and returns its address.
func waitProxy(ctx context.Context, s *engine.Store, id string, errc <-chan error) (string, error) {
	for {
		var rec engine.ProxyRecord
		if _, err := s.GetJSON(ctx, engine.ProxyPath(id), &rec); err == nil && rec.HTTPAddr != "" {
			return rec.HTTPAddr, nil
		}
		select {
		case err := <-errc:
			return "", err
		case <-ctx.Done():
			return "", fmt.Errorf("the proxy did not register within --start-timeout: is its port free? choose one with --proxy-port")
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitAllocators waits until every allocator holds its alive node.
func waitAllocators(ctx context.Context, s *engine.Store, ids []string, errc <-chan error) error {
	for {
		missing := ""
		for _, id := range ids {
			if ok, _, err := s.Exists(ctx, engine.AllocatorAlivePath(id)); err != nil || !ok {
				missing = id
				break
			}
		}
		if missing == "" {
			return nil
		}
		select {
		case err := <-errc:
			return err
		case <-ctx.Done():
			return fmt.Errorf("allocator %s did not register within --start-timeout: check Docker and the log", missing)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// --- up with the console --------------------------------------------------

// runUpConsole starts the supervisor detached (unless it runs), shows
// its progress, then opens the console.
func runUpConsole(ctx context.Context, app *App) error {
	dir := app.StateDir()
	if pid, ok := runningPid(dir); ok {
		st, err := readUpStatus(dir)
		if err == nil && st.Ready {
			fmt.Fprintf(app.Err, "paddock is already up (pid %d): attaching the console\n", pid)
			return openConsole(ctx, app, st)
		}
		fmt.Fprintf(app.Err, "paddock is starting (pid %d): following its progress\n", pid)
	} else {
		if err := spawnSupervisor(app); err != nil {
			return err
		}
	}
	st, err := followProgress(ctx, app)
	if err != nil {
		return err
	}
	return openConsole(ctx, app, st)
}

func openConsole(ctx context.Context, app *App, st UpStatus) error {
	app.V.Set("zk", st.ZooKeeper)
	app.V.Set("zk-tls", false)
	if st.Tunnel != "" {
		app.V.Set("zk", st.Tunnel)
		app.V.Set("zk-tls", true)
	}
	if !isTerminal(app.Out) {
		printWhere(app.Out, st)
		return nil
	}
	return RunConsole(ctx, app, 0)
}

// spawnSupervisor re-runs this binary as `up --headless` in its own
// session, its output in <state-dir>/logs/up.log.
func spawnSupervisor(app *App) error {
	dir := app.StateDir()
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o700); err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(dir, upLogFile), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	os.Remove(filepath.Join(dir, upStatusFile))
	v := app.V
	args := []string{"up", "--headless", "--state-dir", dir, "--log-format", "json", "--log-level", v.GetString("log-level"),
		"--zones", strconv.Itoa(v.GetInt("zones")), "--allocators-per-zone", strconv.Itoa(v.GetInt("allocators-per-zone")),
		"--allocator-memory", v.GetString("allocator-memory"), "--zk-port", strconv.Itoa(v.GetInt("zk-port")),
		"--api-port", strconv.Itoa(v.GetInt("api-port")), "--proxy-port", strconv.Itoa(v.GetInt("proxy-port")),
		"--runtime", v.GetString("runtime"), "--start-timeout", v.GetDuration("start-timeout").String(),
		"--director-tunnel-addr", v.GetString("director-tunnel-addr"), "--director-enroll-addr", v.GetString("director-enroll-addr"),
		"--cert-ttl", v.GetDuration("cert-ttl").String()}
	for k, val := range v.GetStringMapString("label") {
		args = append(args, "--label", k+"="+val)
	}
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "PADDOCK_UP_CHILD=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the platform supervisor: %w", err)
	}
	fmt.Fprintf(app.Err, "starting paddock (supervisor pid %d, log %s)\n", cmd.Process.Pid, filepath.Join(dir, upLogFile))
	go cmd.Wait() // reap if it exits while we watch
	return nil
}

// followProgress prints the supervisor's steps until it is ready.
func followProgress(ctx context.Context, app *App) (UpStatus, error) {
	dir := app.StateDir()
	deadline := time.Now().Add(app.V.GetDuration("start-timeout") + 30*time.Second)
	last := ""
	began := time.Now()
	for {
		st, err := readUpStatus(dir)
		if err == nil {
			if st.Step != last && st.Step != "" {
				fmt.Fprintf(app.Err, "  [%4.1fs] %s\n", time.Since(began).Seconds(), st.Step)
				last = st.Step
			}
			if st.Error != "" {
				return st, fmt.Errorf("paddock up failed: %s (log: %s)", st.Error, filepath.Join(dir, upLogFile))
			}
			if st.Ready {
				fmt.Fprintf(app.Err, "  [%4.1fs] ready\n", time.Since(began).Seconds())
				return st, nil
			}
		}
		if _, ok := runningPid(dir); !ok && time.Since(began) > 5*time.Second {
			return st, fmt.Errorf("the platform supervisor exited before it was ready: see %s", filepath.Join(dir, upLogFile))
		}
		if time.Now().After(deadline) {
			return st, fmt.Errorf("paddock did not become ready in time: see %s", filepath.Join(dir, upLogFile))
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-time.After(150 * time.Millisecond):
		}
	}
}

// zkSuperPassword is the ZooKeeper super user's password for the
// ZooKeeper up starts (the director needs it to grow the ensemble),
// created once in <state-dir>/credentials/zookeeper-super (0600).
func zkSuperPassword(dir string) (string, error) {
	file := filepath.Join(dir, "credentials", "zookeeper-super")
	if b, err := os.ReadFile(file); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	pw := engine.RandomToken(16)
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return "", err
	}
	if err := os.WriteFile(file, []byte(pw+"\n"), 0o600); err != nil {
		return "", err
	}
	return pw, nil
}
