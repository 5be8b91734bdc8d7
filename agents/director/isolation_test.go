package director

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"

	"paddock/agents/allocator"
	"paddock/engine"
	"paddock/engine/testenv"
)

// dockerClient returns a Docker client; without Docker the test skips,
// or fails under CI=true.
func dockerClient(t *testing.T) *client.Client {
	t.Helper()
	return testenv.Docker(t)
}

type probeResult struct {
	Check   string `json:"check"`
	Target  string `json:"target"`
	Reached bool   `json:"reached"`
	Detail  string `json:"detail"`
}

// TestNodeContainerIsolation runs the paddock binary in a FROM scratch
// container as node containers run (same image layout, numeric user,
// bridge network) and probes from inside: ZooKeeper's port is
// unreachable, the director's tunnel is reachable but refuses a client
// without a certificate, and no Docker socket exists.
func TestNodeContainerIsolation(t *testing.T) {
	cli := dockerClient(t)
	p := env.Fresh(t, "zone-1")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	// The director's tunnel listens on every interface, ZooKeeper on
	// loopback only.
	dir := t.TempDir()
	ready := make(chan Addrs, 1)
	dctx, dcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- Run(dctx, Config{ID: "d1", StateDir: dir,
			Store:       engine.Options{Servers: env.Servers(), Credential: p.Creds[engine.RoleDirector], Logger: quiet()},
			Credentials: p.Creds, ZooKeeper: env.Servers(), TunnelAddr: "0.0.0.0:0", EnrollAddr: "127.0.0.1:0",
			Logger: quiet(), Ready: func(a Addrs) { ready <- a }})
	}()
	t.Cleanup(func() { dcancel(); <-done })
	var addrs Addrs
	select {
	case addrs = <-ready:
	case err := <-done:
		t.Fatalf("director: %v", err)
	}

	bin := filepath.Join(t.TempDir(), "paddock")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "paddock")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the static binary: %v\n%s", err, out)
	}
	labels := map[string]string{"paddock.test": "director-isolation", "paddock.managed": "true"}
	version := "isolation-" + engine.RandomToken(4)
	repo := "paddock-test/isolation"
	if err := allocator.BuildImage(ctx, cli, allocator.BuildOptions{Binary: bin, Repo: repo, Version: version, Labels: labels}, io.Discard); err != nil {
		t.Fatal(err)
	}
	ref := allocator.ImageRef(repo, version)
	t.Cleanup(func() {
		_, _ = cli.ImageRemove(context.Background(), ref, image.RemoveOptions{Force: true, PruneChildren: true})
	})

	bridge, err := cli.NetworkInspect(ctx, "bridge", network.InspectOptions{})
	if err != nil || len(bridge.IPAM.Config) == 0 {
		t.Fatalf("bridge network: %v", err)
	}
	gw := bridge.IPAM.Config[0].Gateway
	if gw == "" { // the daemon leaves it out: the bridge interface's address
		name := bridge.Options["com.docker.network.bridge.name"]
		if name == "" {
			name = "docker0"
		}
		gw = interfaceIPv4(t, name)
	}
	_, zkPort, _ := net.SplitHostPort(env.Servers())
	_, tunnelPort, _ := net.SplitHostPort(addrs.Tunnel)
	zkViaHost := net.JoinHostPort(gw, zkPort)
	tunnel := net.JoinHostPort(gw, tunnelPort)

	created, err := cli.ContainerCreate(ctx, &container.Config{
		Image: ref,
		User:  "65532:65532",
		Entrypoint: []string{"/paddock", "tunnel", "probe", "--log-level", "error", "-o", "json",
			"--tcp", zkViaHost, "--tcp", "127.0.0.1:" + zkPort, "--tcp", tunnel,
			"--tls", tunnel, "--file", "/var/run/docker.sock", "--file", "/run/docker.sock"},
		Env:    []string{"PADDOCK_HOME=/tmp/paddock"},
		Labels: labels,
	}, &container.HostConfig{NetworkMode: "bridge", ReadonlyRootfs: true, Tmpfs: map[string]string{"/tmp": "size=16m"}}, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cli.ContainerRemove(context.Background(), created.ID, container.RemoveOptions{Force: true})
	})
	if err := cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	waitC, errC := cli.ContainerWait(ctx, created.ID, container.WaitConditionNotRunning)
	select {
	case <-waitC:
	case err := <-errC:
		t.Fatal(err)
	}
	logs, err := cli.ContainerLogs(ctx, created.ID, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	_, _ = stdcopy.StdCopy(&stdout, &stderr, logs)
	logs.Close()
	var results []probeResult
	if err := json.Unmarshal(stdout.Bytes(), &results); err != nil {
		t.Fatalf("probe output: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	want := map[string]bool{
		"tcp " + zkViaHost:                  false, // ZooKeeper listens on the host's loopback only
		"tcp 127.0.0.1:" + zkPort:           false, // the container's loopback is its own
		"tcp " + tunnel:                     true,  // control: the host is reachable…
		"tls-without-certificate " + tunnel: false, // …but the tunnel refuses a client without a certificate
		"file /var/run/docker.sock":         false,
		"file /run/docker.sock":             false,
	}
	for _, r := range results {
		key := r.Check + " " + r.Target
		exp, ok := want[key]
		if !ok {
			t.Errorf("unexpected probe %s", key)
			continue
		}
		delete(want, key)
		if r.Reached != exp {
			t.Errorf("from a node container, %s: reached=%v (%s), want %v", key, r.Reached, r.Detail, exp)
		}
	}
	for k := range want {
		t.Errorf("probe %s missing from the output: %s", k, stdout.String())
	}
}

func interfaceIPv4(t *testing.T, name string) string {
	t.Helper()
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		t.Fatalf("bridge interface %s: %v", name, err)
	}
	addrs, _ := ifi.Addrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
			return ipn.IP.String()
		}
	}
	t.Fatalf("bridge interface %s has no IPv4 address", name)
	return ""
}
