package platform

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"

	"paddock/agents/allocator"
	"paddock/engine"
)

// `paddock up --containers`: every platform service (director,
// constructor, API, proxy, each allocator) in its own container of one
// image, paddock/platform:<version>-<binary sha>, built FROM scratch from this static
// binary. The containers share the host's network namespace: ZooKeeper
// stays a host process on loopback (no Java image can be built without
// a registry), node ports are published on the host's loopback, so
// every service reaches the others where the in-process mode does. As
// there, only the director talks to ZooKeeper directly: the others dial
// its mTLS tunnel with the role certificates up issues into the state
// dir they mount, and each allocator fronts its nodes with an mTLS node
// tunnel of its own. Only allocator containers get the Docker socket.
// Each service is one container, restarted unless stopped.
//
// Services that other containers need not find before they start bind
// port 0 themselves and are read back where they register (proxies,
// allocators, an API on port 0): a port picked here and bound seconds
// later by a container can be taken in between on a busy host.

// PlatformRepo is the repository of the platform image.
const PlatformRepo = "paddock/platform"

// LabelService names the service a platform container runs.
const LabelService = "paddock.platform.service"

// containerSpec is one service's container.
type containerSpec struct {
	name, kind string
	args       []string
	docker     bool
}

type containers struct {
	cli                    *client.Client
	image                  string
	tunnelAddr, enrollAddr string
	dirMetrics             string
	zkArgs                 []string
	apiURL, apiURLFile     string
	proxyIDs, proxyNames   []string
	allocIDs               []string
	constructors           []string
}

func (m *containers) outlives() bool { return true }

func (m *containers) claim(ctx context.Context, r *run) error {
	if pid, ok := RunningPid(r.dir); ok {
		if st, err := ReadStatus(r.dir); err != nil || !st.Containers {
			return fmt.Errorf("an in-process platform runs from %s (pid %d): stop it with `paddock down` first", r.dir, pid)
		}
	}
	cli, err := dockerClient(ctx, "--containers needs the Docker daemon")
	if err != nil {
		return err
	}
	m.cli = cli
	r.onShutdown(func() { cli.Close() })
	label := Label(r.dir)
	if n, _ := platformContainers(ctx, cli, label, true); n > 0 {
		if st, err := ReadStatus(r.dir); err == nil && st.Ready {
			cli.Close()
			return &AlreadyUpError{Containers: n, Status: st}
		}
	}
	if ok, _ := allocator.IsStaticBinary(r.cfg.Binary); !ok {
		cli.Close()
		return fmt.Errorf("--containers packs this binary into a FROM scratch image, and it is dynamically linked: %s", allocator.StaticHint)
	}
	return nil
}

// PlatformImage is the image the platform containers of a binary run:
// <version>-<first 12 hex of the binary's SHA-256>, so containers always
// run the binary that started them, even beside a platform or a test
// from another build of the same version.
func PlatformImage(version, binaryDigest string) string {
	return PlatformRepo + ":" + version + "-" + binaryDigest[:12]
}

// images builds the node images and the platform image (when this
// binary is not in it yet).
func (m *containers) images(ctx context.Context, r *run) error {
	if err := r.ensureNodeImages(ctx); err != nil {
		return err
	}
	digest, err := allocator.BinaryDigest(r.cfg.Binary)
	if err != nil {
		return err
	}
	m.image = PlatformImage(r.cfg.Version, digest)
	current, err := allocator.ImageUpToDate(ctx, m.cli, m.image, r.cfg.Binary)
	if err != nil {
		return err
	}
	if current {
		r.rec.step("platform image %s present", m.image)
		return nil
	}
	r.rec.step("building platform image %s", m.image)
	// Not ownership labels: containers inherit their image's labels, and
	// the image is shared by every platform of this host (see
	// allocator.Dockerfile).
	df := fmt.Sprintf("FROM scratch\nCOPY paddock /paddock\nLABEL %q=%q \"paddock.platform.version\"=%q\nENTRYPOINT [\"/paddock\"]\n",
		allocator.ImageLabelPrefix+LabelUp, r.rec.get().Label, r.cfg.Version)
	return allocator.BuildScratchImage(ctx, m.cli, allocator.ScratchImage{Ref: m.image, Binary: r.cfg.Binary, Dockerfile: df}, nil)
}

// director pins the director's addresses (other containers are pointed
// at its tunnel before they start) and waits for the CA it publishes.
func (m *containers) director(ctx context.Context, r *run) error {
	pinned, err := pinPorts(r.cfg.DirectorTunnelAddr, r.cfg.DirectorEnrollAddr, "127.0.0.1:0")
	if err != nil {
		return err
	}
	m.tunnelAddr, m.enrollAddr, m.dirMetrics = pinned[0], pinned[1], pinned[2]
	super, err := zkSuperPassword(r.dir)
	if err != nil {
		return err
	}
	// The director alone talks to ZooKeeper directly.
	if err := m.start(ctx, r, containerSpec{"director", "director", []string{"director", "--id", "director-c", "--tunnel-addr", m.tunnelAddr,
		"--enroll-addr", m.enrollAddr, "--metrics-addr", m.dirMetrics, "--zk-super-password", super}, false},
		[]string{"--zk", r.zk, "--zk-tls=false"}); err != nil {
		return err
	}
	if err := waitCA(ctx, r.admin); err != nil {
		return m.explain(ctx, r, "director", err)
	}
	r.rec.service("director", func(u *Service) { u.Metrics = m.dirMetrics })
	return nil
}

// link issues this host's certificates once the director's tunnel
// serves (each allocator gets a copy in its own state dir) and moves
// up's own admin store to the tunnel.
func (m *containers) link(ctx context.Context, r *run) error {
	m.zkArgs = []string{"--zk", r.zk, "--zk-tls=false"}
	if m.tunnelAddr == "-" {
		r.disabledTunnel("every platform container will")
		return nil
	}
	tunnel, enroll := LoopbackAddr(m.tunnelAddr), ""
	if m.enrollAddr != "-" && m.enrollAddr != "" {
		enroll = LoopbackAddr(m.enrollAddr)
	}
	if err := waitTCP(ctx, tunnel); err != nil {
		return m.explain(ctx, r, "director", fmt.Errorf("the director's tunnel: %w", err))
	}
	ji, ats, err := r.issue(ctx, tunnel, enroll, false)
	if err != nil {
		return err
	}
	if enroll == "" {
		r.log.Warn("the director's enrollment endpoint is disabled (--director-enroll-addr -): the containers cannot renew their certificates, which expire "+
			ji.NotAfter.Format("2006-01-02T15:04:05Z07:00")+"; run `paddock up --containers` again before then", "not_after", ji.NotAfter)
	}
	m.allocIDs, _ = r.cfg.allocatorIDs()
	if err := r.copyAllocatorCerts(m.allocIDs); err != nil {
		return err
	}
	r.log.Info("issued the platform containers' tunnel certificates", "tunnel", tunnel, "id", ji.ID, "roles", ji.Roles, "cert_not_after", ji.NotAfter)
	// From here up itself waits through the tunnel too; the direct
	// store served the bootstrap only.
	admin, err := r.connect(ctx, engine.RoleAdmin, r.tunnelLink(tunnel, ats), "up")
	if err != nil {
		return m.explain(ctx, r, "director", err)
	}
	r.setAdmin(admin)
	m.zkArgs = []string{"--zk", tunnel, "--zk-tls"}
	r.rec.set(func(st *Status) { st.Tunnel = tunnel })
	r.rec.step("platform containers reach ZooKeeper through the director's tunnel at %s", tunnel)
	return nil
}

// agents starts the other containers: the API, the constructors, the
// proxies and the allocators.
func (m *containers) agents(ctx context.Context, r *run) error {
	apiAddr := "127.0.0.1:" + strconv.Itoa(r.cfg.APIPort)
	apiArgs := []string{"api", "--addr", apiAddr, "--tls-addr", "", "--metrics-addr", "127.0.0.1:0"}
	if r.cfg.APIPort == 0 {
		// Bound by the API itself; it writes its URL where up reads it.
		m.apiURLFile = filepath.Join(r.dir, "run", "api.url")
		if err := os.MkdirAll(filepath.Dir(m.apiURLFile), 0o700); err != nil {
			return err
		}
		os.Remove(m.apiURLFile)
		apiArgs = append(apiArgs, "--url-file", m.apiURLFile)
	} else {
		m.apiURL = "http://" + apiAddr
	}
	specs := []containerSpec{{"api", "api", apiArgs, false}}
	// Constructors and proxies scale on their own (--scale): more
	// constructors stand by for the leadership, more proxies serve on
	// ports of their own (behind your load balancer).
	for i := 1; i <= r.cfg.count("constructor"); i++ {
		name := "constructor" + suffix(i)
		m.constructors = append(m.constructors, name)
		specs = append(specs, containerSpec{name, "constructor", []string{"constructor", "--id", "constructor-c" + suffix(i), "--metrics-addr", "127.0.0.1:0"}, false})
	}
	for i := 1; i <= r.cfg.count("proxy"); i++ {
		port := 0
		if i == 1 {
			port = r.cfg.ProxyPort
		}
		id, name := "proxy-c"+suffix(i), "proxy"+suffix(i)
		m.proxyIDs, m.proxyNames = append(m.proxyIDs, id), append(m.proxyNames, name)
		specs = append(specs, containerSpec{name, "proxy", []string{"proxy", "--id", id, "--http-addr", "127.0.0.1:" + strconv.Itoa(port), "--https-addr", "",
			"--domain", r.pcfg.Domain, "--access-log", "", "--metrics-addr", "127.0.0.1:0"}, false})
	}
	ids, zones := r.cfg.allocatorIDs()
	m.allocIDs = ids
	for i, id := range ids {
		specs = append(specs, containerSpec{id, "allocator", []string{"allocator", "--id", id, "--zone", zones[i],
			"--capacity", strconv.Itoa(r.cfg.AllocatorMemoryMB) + "m", "--runtime", r.cfg.Runtime,
			"--zk-credential", engine.CredentialFile(r.dir, engine.RoleAllocator),
			"--snapshot-dir", filepath.Join(r.dir, "snapshots"), "--node-binary", "/paddock",
			"--metrics-addr", "127.0.0.1:0", "--label", LabelUp + "=" + r.rec.get().Label,
			// Several allocators share the host network: each fronts
			// its nodes with an mTLS tunnel on a port of its own.
			"--tunnel-addr", "127.0.0.1:0"}, true})
	}
	for _, sp := range specs {
		if err := m.start(ctx, r, sp, m.zkArgs); err != nil {
			return err
		}
	}
	return nil
}

func suffix(i int) string {
	if i == 1 {
		return ""
	}
	return "-" + strconv.Itoa(i)
}

func (m *containers) waitReady(ctx context.Context, r *run) error {
	if m.apiURLFile != "" {
		err := waitFor(ctx, "the API container did not write its URL", nil, func(context.Context) error {
			b, err := os.ReadFile(m.apiURLFile)
			if err == nil {
				m.apiURL = strings.TrimSpace(string(b))
			}
			return err
		})
		if err != nil {
			return m.explain(ctx, r, "api", err)
		}
	}
	if err := waitHTTP(ctx, m.apiURL+"/healthz"); err != nil {
		return m.explain(ctx, r, "api", fmt.Errorf("the API container: %w", err))
	}
	r.rec.service("api", func(u *Service) { u.State, u.Addr = "running", strings.TrimPrefix(m.apiURL, "http://") })
	r.rec.set(func(st *Status) { st.APIURL = m.apiURL })
	for i, id := range m.proxyIDs {
		addr, err := waitProxy(ctx, r.admin, id, nil)
		if err != nil {
			return m.explain(ctx, r, m.proxyNames[i], err)
		}
		if i == 0 {
			r.rec.set(func(st *Status) { st.ProxyURL = "http://" + addr })
		}
		r.rec.service(m.proxyNames[i], func(u *Service) { u.State, u.Addr = "running", addr })
	}
	recs, err := waitAllocators(ctx, r.admin, m.allocIDs, nil)
	if err != nil {
		return err
	}
	for _, id := range m.allocIDs {
		r.rec.service(id, func(u *Service) { u.State, u.Metrics = "running", recs[id].MetricsAddr })
	}
	for _, name := range m.constructors {
		r.rec.service(name, func(u *Service) { u.State = "running" })
	}
	r.rec.service("director", func(u *Service) { u.State = "running" })
	r.rec.set(func(st *Status) {
		st.Missing = []string{"ZooKeeper runs as a host process (no Java image can be built without a registry)"}
	})
	return nil
}

// serve: the containers run on. Detached, up returns; else it stays
// in the foreground holding the pid lock, so `paddock down` signals it.
func (m *containers) serve(ctx context.Context, r *run) error {
	if r.cfg.Detached {
		return nil
	}
	if lock, err := lockPid(r.dir); err == nil {
		r.lock = lock
	}
	<-ctx.Done()
	return nil
}

// explain adds to err what the service's container says: its state and
// the last lines of its log.
func (m *containers) explain(ctx context.Context, r *run, service string, err error) error {
	name := containerName(r.rec.get().Label, service)
	ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	info, ierr := m.cli.ContainerInspect(ictx, name)
	if ierr != nil {
		return fmt.Errorf("%w (docker logs %s)", err, name)
	}
	state := info.State.Status
	if info.RestartCount > 0 {
		state += fmt.Sprintf(", restarted %d times", info.RestartCount)
	}
	tail := ""
	if rc, lerr := m.cli.ContainerLogs(ictx, name, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: "5"}); lerr == nil {
		var out strings.Builder
		_, _ = stdcopy.StdCopy(&out, &out, io.LimitReader(rc, 8<<10))
		rc.Close()
		if t := strings.TrimSpace(out.String()); t != "" {
			tail = "; its last log lines:\n" + t
		}
	}
	return fmt.Errorf("%w (container %s %s%s)", err, name, state, tail)
}

func containerName(label, service string) string { return "paddock-" + label[:6] + "-" + service }

// platformContainers counts this platform's service containers.
func platformContainers(ctx context.Context, cli *client.Client, label string, runningOnly bool) (int, error) {
	f := filters.NewArgs(filters.Arg("label", LabelUp+"="+label), filters.Arg("label", LabelService))
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: !runningOnly, Filters: f})
	return len(cs), err
}

// start (re)creates one service's container: the state dir mounted at
// the same path, the host network, restarted unless stopped.
func (m *containers) start(ctx context.Context, r *run, sp containerSpec, zk []string) error {
	stateDir := r.dir
	if sp.kind == "allocator" {
		// The allocator's own state (identity, volume ledger, its copy
		// of the certificates) in a directory of its own; the role
		// credential stays shared.
		stateDir = filepath.Join(r.dir, "allocators", sp.name)
	}
	args := append(append(append([]string{}, zk...), "--state-dir", stateDir, "--log-format", "json"), sp.args...)
	r.rec.step("starting container %s", sp.name)
	label := r.rec.get().Label
	name := containerName(label, sp.name)
	if err := m.cli.ContainerRemove(ctx, name, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove old container %s: %w", name, err)
	}
	labels := map[string]string{"paddock.managed": "true", LabelUp: label, LabelService: sp.name}
	keys := make([]string, 0, len(r.cfg.Labels))
	for k := range r.cfg.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		labels[k] = r.cfg.Labels[k]
	}
	binds := []string{r.dir + ":" + r.dir}
	if sp.docker {
		binds = append(binds, "/var/run/docker.sock:/var/run/docker.sock")
	}
	cfg := &container.Config{Image: m.image, Cmd: args, Labels: labels, Env: []string{"PADDOCK_HOME=" + stateDir}}
	hc := &container.HostConfig{
		NetworkMode:   "host",
		Binds:         binds,
		Tmpfs:         map[string]string{"/tmp": "rw,nosuid,nodev,size=64m"},
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped},
	}
	created, err := m.cli.ContainerCreate(ctx, cfg, hc, nil, nil, name)
	if err != nil {
		return fmt.Errorf("create container %s: %w", name, err)
	}
	if err := m.cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		return fmt.Errorf("start container %s: %w", name, err)
	}
	r.rec.service(sp.name, func(u *Service) { u.Kind, u.State, u.Addr = sp.kind, "starting", "container "+created.ID[:12] })
	return nil
}

// pinPorts resolves a port 0 in listen addresses to free ports, so the
// addresses can be handed to other containers before their owners bind
// them. "-" (disabled) and fixed ports pass through. Every free port
// stays held until all are chosen, so two never get the same port.
func pinPorts(addrs ...string) ([]string, error) {
	out := make([]string, len(addrs))
	for i, addr := range addrs {
		if addr == "-" || addr == "" {
			out[i] = addr
			continue
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, configErr("listen address %q: %v", addr, err)
		}
		if port != "0" {
			out[i] = addr
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(LoopbackAddrHost(host), "0"))
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		out[i] = net.JoinHostPort(host, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
	}
	return out, nil
}

// LoopbackAddrHost is host, or 127.0.0.1 for an unspecified one.
func LoopbackAddrHost(host string) string {
	h, _, _ := net.SplitHostPort(LoopbackAddr(net.JoinHostPort(host, "0")))
	return h
}

// dockerClient reaches the Docker engine or says what to do.
func dockerClient(ctx context.Context, hint string) (*client.Client, error) {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("Docker client: %w (is Docker installed and running?)", err)
	}
	if _, err := cli.Ping(ctx); err != nil {
		cli.Close()
		return nil, fmt.Errorf("cannot reach Docker: %w (start the Docker daemon; %s)", err, hint)
	}
	return cli, nil
}
