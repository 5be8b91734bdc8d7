package cmd

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"

	"paddock/agents/allocator"
	"paddock/agents/director"
	"paddock/engine"
)

// `paddock up --containers`: every platform service (constructor, API,
// proxy, each allocator) in its own container of one image,
// paddock/platform:<version>, built FROM scratch from this static binary.
// The containers share the host's network namespace (the platform
// network): ZooKeeper stays a host process on loopback (no Java image
// can be built without a registry), node ports are published on the
// host's loopback, so every service reaches the others where the
// in-process mode does. As there, only the director talks to ZooKeeper
// directly: the other containers dial its mTLS tunnel with the role
// certificates up issues into the state dir they mount, and each
// allocator fronts its nodes with an mTLS node tunnel of its own. Only
// allocator containers get the Docker socket. Each service is one container, restarted unless stopped; run
// more of one with the same image and another --id.

const (
	platformRepo = "paddock/platform"
	labelService = "paddock.platform.service"
)

// platformImage is the image every platform container runs.
func platformImage() string { return platformRepo + ":" + Version }

func runContainers(ctx context.Context, app *App) error {
	dir, err := filepath.Abs(app.StateDir())
	if err != nil {
		return err
	}
	app.V.Set("state-dir", dir)
	if pid, ok := runningPid(dir); ok {
		if st, err := readUpStatus(dir); err != nil || !st.Containers {
			return fmt.Errorf("an in-process platform runs from %s (pid %d): stop it with `paddock down` first", dir, pid)
		}
	}
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return fmt.Errorf("Docker client: %w", err)
	}
	defer cli.Close()
	if _, err := cli.Ping(ctx); err != nil {
		return fmt.Errorf("cannot reach Docker: %w (--containers needs the Docker daemon)", err)
	}
	label := upLabel(dir)
	if n, _ := platformContainers(ctx, cli, label, true); n > 0 {
		if st, err := readUpStatus(dir); err == nil && st.Ready {
			fmt.Fprintf(app.Err, "paddock is already up in %d containers: attaching\n", n)
			if app.V.GetBool("headless") {
				printWhere(app.Out, st)
				return nil
			}
			return openConsole(ctx, app, st)
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	if ok, _ := allocator.IsStaticBinary(exe); !ok {
		return fmt.Errorf("--containers packs this binary into a FROM scratch image, and it is dynamically linked: %s", allocator.StaticHint)
	}
	s := &supervisor{app: app, log: app.Log, dir: dir, print: true}
	s.st = UpStatus{Pid: 0, StartedAt: time.Now().UTC(), Label: label, Containers: true}
	s.save()
	pr, err := prepare(ctx, s)
	if err != nil {
		return s.fail(err)
	}
	defer pr.admin.Close()
	v := app.V

	s.step("building platform image %s", platformImage())
	if err := buildPlatformImage(ctx, cli, exe, map[string]string{labelUp: label}); err != nil {
		return s.fail(err)
	}

	port := func(flag string) (int, error) {
		p := v.GetInt(flag)
		if p != 0 {
			return p, nil
		}
		return freePort()
	}
	apiPort, err := port("api-port")
	if err != nil {
		return s.fail(err)
	}
	proxyPort, err := port("proxy-port")
	if err != nil {
		return s.fail(err)
	}
	// The director's addresses are fixed before it starts (a port 0 is
	// resolved here): the other containers are pointed at its tunnel.
	tunnelAddr, err := pinPort(v.GetString("director-tunnel-addr"))
	if err != nil {
		return s.fail(err)
	}
	enrollAddr, err := pinPort(v.GetString("director-enroll-addr"))
	if err != nil {
		return s.fail(err)
	}
	dirMetrics, err := freePort()
	if err != nil {
		return s.fail(err)
	}
	type spec struct {
		name, kind string
		args       []string
		docker     bool
	}
	super, err := zkSuperPassword(dir)
	if err != nil {
		return s.fail(err)
	}
	specs := []spec{
		{"director", "director", []string{"director", "--id", "director-c", "--tunnel-addr", tunnelAddr,
			"--enroll-addr", enrollAddr, "--metrics-addr", "127.0.0.1:" + strconv.Itoa(dirMetrics), "--zk-super-password", super}, false},
		{"api", "api", []string{"api", "--addr", "127.0.0.1:" + strconv.Itoa(apiPort), "--tls-addr", "", "--metrics-addr", "127.0.0.1:0"}, false},
	}
	// Constructors and proxies scale on their own (--scale): more
	// constructors stand by for the leadership, more proxies serve on
	// ports of their own (behind your load balancer).
	scale := v.GetStringMapString("scale")
	count := func(svc string) (int, error) {
		n := 1
		if s, ok := scale[svc]; ok {
			var err error
			if n, err = strconv.Atoi(s); err != nil || n < 1 || n > 9 {
				return 0, usageErr("--scale %s=%s: use 1 to 9", svc, s)
			}
		}
		return n, nil
	}
	for k := range scale {
		if k != "constructor" && k != "proxy" {
			return s.fail(usageErr("--scale %s: only constructor and proxy scale (allocators scale with --zones and --allocators-per-zone)", k))
		}
	}
	nCons, err := count("constructor")
	if err != nil {
		return s.fail(err)
	}
	nProx, err := count("proxy")
	if err != nil {
		return s.fail(err)
	}
	suffix := func(i int) string {
		if i == 1 {
			return ""
		}
		return "-" + strconv.Itoa(i)
	}
	for i := 1; i <= nCons; i++ {
		specs = append(specs, spec{"constructor" + suffix(i), "constructor", []string{"constructor", "--id", "constructor-c" + suffix(i), "--metrics-addr", "127.0.0.1:0"}, false})
	}
	var proxyIDs []string
	for i := 1; i <= nProx; i++ {
		p := proxyPort
		if i > 1 {
			if p, err = freePort(); err != nil {
				return s.fail(err)
			}
		}
		proxyIDs = append(proxyIDs, "proxy-c"+suffix(i))
		specs = append(specs, spec{"proxy" + suffix(i), "proxy", []string{"proxy", "--id", "proxy-c" + suffix(i), "--http-addr", "127.0.0.1:" + strconv.Itoa(p), "--https-addr", "",
			"--domain", pr.cfg.Domain, "--access-log", "", "--metrics-addr", "127.0.0.1:0"}, false})
	}
	var allocIDs []string
	// Allocators' status endpoints on known ports (up.json lists them).
	allocMetrics := map[string]string{}
	for _, z := range pr.zones {
		for n := 1; n <= pr.perZone; n++ {
			id := fmt.Sprintf("alloc-%s-%d", z, n)
			allocIDs = append(allocIDs, id)
			mp, err := freePort()
			if err != nil {
				return s.fail(err)
			}
			allocMetrics[id] = "127.0.0.1:" + strconv.Itoa(mp)
			specs = append(specs, spec{id, "allocator", []string{"allocator", "--id", id, "--zone", z,
				"--capacity", engine.FormatSize(pr.memMB), "--runtime", pr.runtime,
				"--zk-credential", engine.CredentialFile(dir, engine.RoleAllocator),
				"--snapshot-dir", filepath.Join(dir, "snapshots"), "--node-binary", "/paddock",
				"--metrics-addr", allocMetrics[id], "--label", labelUp + "=" + label,
				// Several allocators share the host network: each fronts
				// its nodes with an mTLS tunnel on a port of its own.
				"--tunnel-addr", "127.0.0.1:0"}, true})
		}
	}
	extra := v.GetStringMapString("label")
	start := func(sp spec, zk []string) error {
		stateDir := dir
		if sp.kind == "allocator" {
			// The allocator's own state (identity, volume ledger, its
			// copy of the certificates) in a directory of its own; the
			// role credential stays shared.
			stateDir = filepath.Join(dir, "allocators", sp.name)
		}
		args := append(append(append([]string{}, zk...), "--state-dir", stateDir, "--log-format", "json"), sp.args...)
		s.step("starting container %s", sp.name)
		cid, err := startPlatformContainer(ctx, cli, label, sp.name, args, dir, sp.docker, extra)
		if err != nil {
			return err
		}
		s.service(sp.name, func(u *UpService) { u.Kind, u.State, u.Addr = sp.kind, "starting", "container "+cid[:12] })
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, v.GetDuration("start-timeout"))
	defer cancel()

	// The director alone talks to ZooKeeper directly; once its tunnel
	// serves, this host gets a certificate per role (as in-process up
	// does) and every other container dials the tunnel with its own.
	if err := start(specs[0], []string{"--zk", pr.zk, "--zk-tls=false"}); err != nil {
		return s.fail(err)
	}
	if err := waitCA(wctx, pr.admin); err != nil {
		return s.fail(fmt.Errorf("%w (docker logs %s)", err, containerName(label, "director")))
	}
	s.service("director", func(u *UpService) { u.Metrics = "127.0.0.1:" + strconv.Itoa(dirMetrics) })
	zk := []string{"--zk", pr.zk, "--zk-tls=false"}
	admin := pr.admin
	if tunnelAddr == "-" {
		app.Log.Warn("DIRECTOR TUNNEL DISABLED (--director-tunnel-addr -): every platform container connects to ZooKeeper directly at "+pr.zk+
			", without mutual TLS; drop the flag to put the tunnel back in front of ZooKeeper", "zookeeper", pr.zk)
	} else {
		tunnel := loopbackAddr(tunnelAddr)
		if err := waitTCP(wctx, tunnel); err != nil {
			return s.fail(fmt.Errorf("the director's tunnel %s: %w (docker logs %s)", tunnel, err, containerName(label, "director")))
		}
		if err := issueContainerCerts(app, dir, tunnel, enrollAddr, allocIDs); err != nil {
			return s.fail(err)
		}
		// From here up itself waits through the tunnel too; the direct
		// store served the bootstrap only.
		v.Set("zk", tunnel)
		v.Set("zk-tls", true)
		if admin, err = app.Connect(wctx, engine.RoleAdmin, nil); err != nil {
			return s.fail(fmt.Errorf("reach ZooKeeper through the director's tunnel %s: %w (docker logs %s)", tunnel, err, containerName(label, "director")))
		}
		defer admin.Close()
		pr.admin.Close()
		zk = []string{"--zk", tunnel, "--zk-tls"}
		s.set(func(st *UpStatus) { st.Tunnel = tunnel })
		s.step("platform containers reach ZooKeeper through the director's tunnel at %s", tunnel)
	}
	for _, sp := range specs[1:] {
		if err := start(sp, zk); err != nil {
			return s.fail(err)
		}
	}

	s.step("waiting for the services to be ready")
	none := make(chan error)
	apiURL := "http://127.0.0.1:" + strconv.Itoa(apiPort)
	if err := waitHTTP(wctx, apiURL+"/healthz"); err != nil {
		return s.fail(fmt.Errorf("the API container did not answer on %s: %w (docker logs %s)", apiURL, err, containerName(label, "api")))
	}
	s.service("api", func(u *UpService) { u.State, u.Addr = "running", "127.0.0.1:"+strconv.Itoa(apiPort) })
	var proxyAddr string
	for i, id := range proxyIDs {
		addr, err := waitProxy(wctx, admin, id, none)
		if err != nil {
			return s.fail(fmt.Errorf("%w (docker logs %s)", err, containerName(label, "proxy"+suffix(i+1))))
		}
		if i == 0 {
			proxyAddr = addr
		}
		s.service("proxy"+suffix(i+1), func(u *UpService) { u.State, u.Addr = "running", addr })
	}
	if err := waitAllocators(wctx, admin, allocIDs, none); err != nil {
		return s.fail(err)
	}
	for _, id := range allocIDs {
		s.service(id, func(u *UpService) { u.State, u.Metrics = "running", allocMetrics[id] })
	}
	for i := 1; i <= nCons; i++ {
		s.service("constructor"+suffix(i), func(u *UpService) { u.State = "running" })
	}
	s.service("director", func(u *UpService) { u.State = "running" })
	// The CLI on this host reaches ZooKeeper where the containers do.
	if err := writeConfigKeys(filepath.Join(dir, "config.yaml"), map[string]any{
		"zk": v.GetString("zk"), "zk-tls": v.GetBool("zk-tls"), "api-url": apiURL, "api-key": pr.key, "api-key-file": pr.keyFile,
	}); err != nil {
		return s.fail(err)
	}
	s.set(func(st *UpStatus) {
		st.APIURL, st.ProxyURL, st.Ready, st.Step = apiURL, "http://"+proxyAddr, true, "ready"
		st.Missing = []string{"ZooKeeper runs as a host process (no Java image can be built without a registry)"}
	})
	st, _ := readUpStatus(dir)
	if v.GetBool("headless") {
		printWhere(app.Out, st)
		fmt.Fprintf(app.Out, "platform containers run on; `paddock down` removes them\n")
		// Stay in the foreground; the pid lock lets `paddock down`
		// signal this process too.
		if lock, err := lockPid(dir); err == nil {
			defer func() {
				os.Remove(filepath.Join(dir, upPidFile))
				lock.Close()
			}()
		}
		<-ctx.Done()
		return nil
	}
	return openConsole(ctx, app, st)
}

func containerName(label, service string) string { return "paddock-" + label[:6] + "-" + service }

// platformContainers counts this platform's service containers.
func platformContainers(ctx context.Context, cli *client.Client, label string, runningOnly bool) (int, error) {
	f := filters.NewArgs(filters.Arg("label", labelUp+"="+label), filters.Arg("label", labelService))
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: !runningOnly, Filters: f})
	return len(cs), err
}

// startPlatformContainer (re)creates one service's container.
func startPlatformContainer(ctx context.Context, cli *client.Client, label, service string, args []string, stateDir string, dockerSock bool, extra map[string]string) (string, error) {
	name := containerName(label, service)
	if err := cli.ContainerRemove(ctx, name, container.RemoveOptions{Force: true}); err != nil && !strings.Contains(err.Error(), "No such container") {
		return "", fmt.Errorf("remove old container %s: %w", name, err)
	}
	labels := map[string]string{"paddock.managed": "true", labelUp: label, labelService: service}
	for k, v := range extra {
		labels[k] = v
	}
	binds := []string{stateDir + ":" + stateDir}
	if dockerSock {
		binds = append(binds, "/var/run/docker.sock:/var/run/docker.sock")
	}
	cfg := &container.Config{Image: platformImage(), Cmd: args, Labels: labels, Env: []string{"PADDOCK_HOME=" + stateDir}}
	hc := &container.HostConfig{
		NetworkMode:   "host",
		Binds:         binds,
		Tmpfs:         map[string]string{"/tmp": "rw,nosuid,nodev,size=64m"},
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped},
	}
	created, err := cli.ContainerCreate(ctx, cfg, hc, nil, nil, name)
	if err != nil {
		return "", fmt.Errorf("create container %s: %w", name, err)
	}
	if err := cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		return "", fmt.Errorf("start container %s: %w", name, err)
	}
	return created.ID, nil
}

// buildPlatformImage builds paddock/platform:<version> FROM scratch
// with this binary as /paddock (classic builder: no registry needed).
func buildPlatformImage(ctx context.Context, cli *client.Client, binary string, labels map[string]string) error {
	bin, err := os.ReadFile(binary)
	if err != nil {
		return err
	}
	var df strings.Builder
	df.WriteString("FROM scratch\nCOPY paddock /paddock\n")
	// Not ownership labels: containers inherit their image's labels, and
	// the image is shared by every platform of this host (see
	// allocator.Dockerfile).
	for k, v := range labels {
		fmt.Fprintf(&df, "LABEL %q=%q\n", allocator.ImageLabelPrefix+k, v)
	}
	fmt.Fprintf(&df, "LABEL \"paddock.platform.version\"=%q\n", Version)
	df.WriteString("ENTRYPOINT [\"/paddock\"]\n")
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Now()
	for _, f := range []struct {
		name string
		mode int64
		body []byte
	}{{"Dockerfile", 0o644, []byte(df.String())}, {"paddock", 0o755, bin}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.body)), ModTime: now}); err != nil {
			return err
		}
		if _, err := tw.Write(f.body); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	resp, err := cli.ImageBuild(ctx, &buf, build.ImageBuildOptions{Tags: []string{platformImage()}, Remove: true, ForceRemove: true, Version: build.BuilderV1})
	if err != nil {
		return fmt.Errorf("build %s: %w", platformImage(), err)
	}
	defer resp.Body.Close()
	// Build errors arrive inside the stream.
	dec := json.NewDecoder(resp.Body)
	for {
		var m struct {
			Error       string `json:"error"`
			ErrorDetail struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&m); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("build %s: read the build output: %w", platformImage(), err)
		}
		if m.Error != "" {
			return fmt.Errorf("build %s: %s", platformImage(), m.Error)
		}
	}
}

// waitHTTP waits until url answers (any status below 500).
func waitHTTP(ctx context.Context, url string) error {
	c := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := c.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode < 500 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return errors.New("not answering within --start-timeout")
		case <-time.After(150 * time.Millisecond):
		}
	}
}

// freePort picks a free loopback port (host-network containers bind it).
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// pinPort resolves a port 0 in a listen address to a free port, so the
// address can be handed to other containers before its owner binds it.
// "-" (disabled) and fixed ports pass through.
func pinPort(addr string) (string, error) {
	if addr == "-" || addr == "" {
		return addr, nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", usageErr("listen address %q: %v", addr, err)
	}
	if port != "0" {
		return addr, nil
	}
	p, err := freePort()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(host, strconv.Itoa(p)), nil
}

// waitTCP waits until addr accepts connections.
func waitTCP(ctx context.Context, addr string) error {
	var d net.Dialer
	for {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.New("not accepting connections within --start-timeout")
		case <-time.After(150 * time.Millisecond):
		}
	}
}

// issueContainerCerts gives this host a certificate per role from the
// platform CA (<state-dir>/tls, which the containers mount at the same
// path) and each allocator's state dir a copy of the host key, the CA,
// the allocator certificate and join.json: allocator containers run
// with a state dir of their own and renew their copy through the
// director's enrollment endpoint.
func issueContainerCerts(app *App, dir, tunnel, enrollAddr string, allocIDs []string) error {
	enroll := ""
	if enrollAddr != "-" && enrollAddr != "" {
		enroll = loopbackAddr(enrollAddr)
	}
	roles := make([]string, len(upTunnelRoles))
	for i, r := range upTunnelRoles {
		roles[i] = string(r)
	}
	ji, err := director.IssueLocal(dir, enroll, tunnel, "", roles, app.V.GetDuration("cert-ttl"))
	if err != nil {
		return fmt.Errorf("issue this host's certificates for the director's tunnel: %w (remove %s to start over)", err, director.TLSDir(dir))
	}
	if enroll == "" {
		app.Log.Warn("the director's enrollment endpoint is disabled (--director-enroll-addr -): the containers cannot renew their certificates, which expire "+
			ji.NotAfter.Format(time.RFC3339)+"; run `paddock up --containers` again before then", "not_after", ji.NotAfter)
	}
	src := director.TLSDir(dir)
	files := []string{"key.pem", "ca.pem", "join.json", "host-id", "ca.crl", string(engine.RoleAllocator) + ".crt"}
	for _, id := range allocIDs {
		dst := director.TLSDir(filepath.Join(dir, "allocators", id))
		if err := os.MkdirAll(dst, 0o700); err != nil {
			return err
		}
		for _, f := range files {
			b, err := os.ReadFile(filepath.Join(src, f))
			if errors.Is(err, os.ErrNotExist) && (f == "ca.crl" || f == "host-id") {
				continue
			} else if err != nil {
				return fmt.Errorf("copy the allocator certificate to %s: %w", dst, err)
			}
			mode := os.FileMode(0o644)
			if f == "key.pem" {
				mode = 0o600
			}
			tmp := filepath.Join(dst, "."+f+".tmp")
			if err := os.WriteFile(tmp, b, mode); err != nil {
				return err
			}
			if err := os.Rename(tmp, filepath.Join(dst, f)); err != nil {
				return err
			}
		}
	}
	app.Log.Info("issued the platform containers' tunnel certificates", "tunnel", tunnel, "id", ji.ID, "roles", ji.Roles, "cert_not_after", ji.NotAfter)
	return nil
}

// waitCA waits until the director has published the platform CA.
func waitCA(ctx context.Context, s *engine.Store) error {
	for {
		if ok, _, err := s.Exists(ctx, engine.PathCA); err == nil && ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.New("the director did not publish the platform CA within --start-timeout")
		case <-time.After(150 * time.Millisecond):
		}
	}
}
