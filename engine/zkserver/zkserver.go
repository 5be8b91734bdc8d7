// Package zkserver starts and stops real Apache ZooKeeper servers (Debian's
// zookeeper package) on loopback: a standalone server or an ensemble with
// dynamic reconfiguration enabled. It is used by `paddock zookeeper`,
// `paddock up`, scripts/zk.sh and the integration tests; it owns the
// generated configuration directories and nothing else.
package zkserver

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"paddock/engine/freeport"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// DefaultClasspath is where Debian's zookeeper package puts its jars.
// zookeeper.jar pulls its dependencies through its manifest; slf4j-simple
// gives it a log binding.
var DefaultClasspath = "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar"

// Config describes a ZooKeeper deployment on this host.
type Config struct {
	// Dir holds one sub-directory per server (config, data, log, pid).
	Dir string
	// Servers is 1 (standalone) or an odd ensemble size (3, 5).
	Servers int
	// ClientPort of the first server; 0 picks free ports. Server i uses
	// ClientPort+i-1 when set.
	ClientPort int
	// SuperPassword, when set, enables the ZooKeeper super user (needed
	// for reconfig and for bootstrapping ACLs).
	SuperPassword string
	// Detach starts the JVMs in their own session so they outlive this
	// process (paddock zookeeper start, scripts/zk.sh). Otherwise they are
	// children killed with this process.
	Detach bool
	// HeapMB is the JVM heap per server (default 256).
	HeapMB int
	// Java binary (default "java" from PATH).
	Java string
}

// Node is one ZooKeeper server.
type Node struct {
	ID         int
	ClientPort int
	PeerPort   int
	ElectPort  int
	Dir        string
	cmd        *exec.Cmd
	exited     chan struct{}
}

// Cluster is a running standalone server or ensemble.
type Cluster struct {
	cfg   Config
	Nodes []*Node
}

// SuperDigest returns ZooKeeper's digest form "super:base64(sha1(super:pw))".
func SuperDigest(password string) string {
	h := sha1.Sum([]byte("super:" + password))
	return "super:" + base64.StdEncoding.EncodeToString(h[:])
}

// FreePort returns a free loopback TCP port outside the kernel's ephemeral
// range, so no other socket is handed it before ZooKeeper binds it.
func FreePort() (int, error) {
	return freeport.One("127.0.0.1")
}

// Check verifies that Java and the ZooKeeper jars are installed, and says
// how to install them when they are not.
func Check(cfg Config) error {
	java := cfg.Java
	if java == "" {
		java = "java"
	}
	if _, err := exec.LookPath(java); err != nil {
		return fmt.Errorf("java not found on PATH: run scripts/setup.sh (installs default-jre-headless and zookeeper)")
	}
	for _, jar := range strings.Split(DefaultClasspath, ":") {
		if _, err := os.Stat(jar); err != nil {
			return fmt.Errorf("%s missing: run scripts/setup.sh (installs Debian's zookeeper package)", jar)
		}
	}
	return nil
}

// Start writes fresh configuration for every server and starts them, then
// waits until each serves (srvr reports a Mode) or ctx ends.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	if cfg.Servers == 0 {
		cfg.Servers = 1
	}
	if cfg.Servers != 1 && cfg.Servers%2 == 0 {
		return nil, fmt.Errorf("ensemble size %d: use 1 (standalone) or an odd number such as 3 or 5", cfg.Servers)
	}
	if cfg.HeapMB == 0 {
		cfg.HeapMB = 256
	}
	if err := Check(cfg); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	c := &Cluster{cfg: cfg}
	for i := 1; i <= cfg.Servers; i++ {
		n := &Node{ID: i, Dir: filepath.Join(cfg.Dir, fmt.Sprintf("zk%d", i))}
		var err error
		if cfg.ClientPort != 0 {
			n.ClientPort = cfg.ClientPort + i - 1
		} else if n.ClientPort, err = FreePort(); err != nil {
			return nil, err
		}
		if n.PeerPort, err = FreePort(); err != nil {
			return nil, err
		}
		if n.ElectPort, err = FreePort(); err != nil {
			return nil, err
		}
		c.Nodes = append(c.Nodes, n)
	}
	for _, n := range c.Nodes {
		if err := c.writeConfig(n); err != nil {
			return nil, err
		}
	}
	for _, n := range c.Nodes {
		if err := c.StartNode(n.ID); err != nil {
			c.Stop()
			return nil, err
		}
	}
	if err := c.WaitReady(ctx); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// ServerLine is the dynamic-config line of a node.
func (n *Node) ServerLine() string {
	return fmt.Sprintf("server.%d=127.0.0.1:%d:%d;127.0.0.1:%d", n.ID, n.PeerPort, n.ElectPort, n.ClientPort)
}

func (c *Cluster) writeConfig(n *Node) error {
	// Fresh directory each run: ZooKeeper rewrites zoo.cfg and the
	// dynamic file after start and after every reconfig.
	_ = os.RemoveAll(filepath.Join(n.Dir, "conf"))
	for _, d := range []string{"conf", "data"} {
		if err := os.MkdirAll(filepath.Join(n.Dir, d), 0o755); err != nil {
			return err
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "tickTime=500\ninitLimit=20\nsyncLimit=10\n")
	fmt.Fprintf(&b, "dataDir=%s\n", filepath.Join(n.Dir, "data"))
	fmt.Fprintf(&b, "admin.enableServer=false\n4lw.commands.whitelist=ruok,srvr,mntr,conf,stat\n")
	fmt.Fprintf(&b, "maxSessionTimeout=60000\nminSessionTimeout=1000\n")
	// Every agent of a one-host platform connects from 127.0.0.1: lift
	// the default cap of 60 connections per address (scale tests run 100
	// allocators).
	fmt.Fprintf(&b, "maxClientCnxns=0\n")
	if c.cfg.Servers == 1 {
		// Loopback only: agents reach ZooKeeper through the director's
		// tunnel, never over the network.
		fmt.Fprintf(&b, "clientPortAddress=127.0.0.1\nclientPort=%d\n", n.ClientPort)
	} else {
		dyn := filepath.Join(n.Dir, "conf", "zoo.cfg.dynamic")
		fmt.Fprintf(&b, "reconfigEnabled=true\nstandaloneEnabled=false\ndynamicConfigFile=%s\n", dyn)
		var lines strings.Builder
		for _, m := range c.Nodes {
			lines.WriteString(m.ServerLine() + "\n")
		}
		if err := os.WriteFile(dyn, []byte(lines.String()), 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(n.Dir, "data", "myid"), []byte(strconv.Itoa(n.ID)+"\n"), 0o644); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(n.Dir, "conf", "zoo.cfg"), []byte(b.String()), 0o644)
}

// StartNode (re)starts server id with its existing data.
func (c *Cluster) StartNode(id int) error {
	n := c.node(id)
	if n == nil {
		return fmt.Errorf("no ZooKeeper server %d", id)
	}
	java := c.cfg.Java
	if java == "" {
		java = "java"
	}
	// numWorkerThreads=0: the selector thread reads and writes the
	// client sockets itself instead of handing every request to a pool
	// of 2×cores workers (a thread wake-up each way). On 2 cores that
	// halves ZooKeeper's CPU per request (constructor benchmark,
	// docs/benchmarks.md: 1.35 → 0.67 and 0.89 → 0.59 ms per placed
	// instance, JIT excluded); one selector per √(cores/2) still serves
	// the sockets.
	args := []string{fmt.Sprintf("-Xmx%dm", c.cfg.HeapMB), "-XX:+UseSerialGC",
		"-Dzookeeper.nio.numWorkerThreads=0",
		"-Dzookeeper.jmx.log4j.disable=true", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn"}
	if c.cfg.SuperPassword != "" {
		args = append(args, "-Dzookeeper.DigestAuthenticationProvider.superDigest="+SuperDigest(c.cfg.SuperPassword))
	}
	args = append(args, "-cp", DefaultClasspath, "org.apache.zookeeper.server.quorum.QuorumPeerMain",
		filepath.Join(n.Dir, "conf", "zoo.cfg"))
	logf, err := os.OpenFile(filepath.Join(n.Dir, "zookeeper.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(java, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr(c.cfg.Detach)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start ZooKeeper server %d: %w", id, err)
	}
	logf.Close()
	n.cmd = cmd
	n.exited = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(cmd, n.exited)
	return os.WriteFile(filepath.Join(n.Dir, "zookeeper.pid"), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644)
}

// StopNode kills server id (SIGKILL: a crash, as tests want it).
func (c *Cluster) StopNode(id int) error {
	n := c.node(id)
	if n == nil || n.cmd == nil {
		return nil
	}
	_ = n.cmd.Process.Kill()
	select {
	case <-n.exited:
	case <-time.After(10 * time.Second):
	}
	n.cmd = nil
	_ = os.Remove(filepath.Join(n.Dir, "zookeeper.pid"))
	return nil
}

// Stop kills every server.
func (c *Cluster) Stop() {
	for _, n := range c.Nodes {
		_ = c.StopNode(n.ID)
	}
}

func (c *Cluster) node(id int) *Node {
	for _, n := range c.Nodes {
		if n.ID == id {
			return n
		}
	}
	return nil
}

// ConnectString is the client connection string "127.0.0.1:p1,127.0.0.1:p2".
func (c *Cluster) ConnectString() string {
	var s []string
	for _, n := range c.Nodes {
		s = append(s, fmt.Sprintf("127.0.0.1:%d", n.ClientPort))
	}
	return strings.Join(s, ",")
}

// Node returns server id.
func (c *Cluster) Node(id int) *Node { return c.node(id) }

// WaitReady waits until every running server answers srvr with a Mode line
// (ruok answers before a server serves, so it is not enough).
func (c *Cluster) WaitReady(ctx context.Context) error {
	for _, n := range c.Nodes {
		if n.cmd == nil {
			continue
		}
		if err := WaitServing(ctx, fmt.Sprintf("127.0.0.1:%d", n.ClientPort), n.exited); err != nil {
			return fmt.Errorf("ZooKeeper server %d (%s): %w; see %s", n.ID, n.Dir, err, filepath.Join(n.Dir, "zookeeper.log"))
		}
	}
	return nil
}

// Leader returns the id of the ensemble's leader (0 if none or standalone).
func (c *Cluster) Leader() int {
	for _, n := range c.Nodes {
		if n.cmd == nil {
			continue
		}
		if m, _ := Mode(fmt.Sprintf("127.0.0.1:%d", n.ClientPort)); m == "leader" {
			return n.ID
		}
	}
	return 0
}

// Mode asks a server's srvr four-letter word for its mode
// (standalone, leader, follower).
func Mode(addr string) (string, error) {
	out, err := FourLetter(addr, "srvr", time.Second)
	if err != nil {
		return "", err
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if m, ok := strings.CutPrefix(sc.Text(), "Mode: "); ok {
			return strings.TrimSpace(m), nil
		}
	}
	return "", errors.New("not serving yet")
}

// FourLetter sends a four-letter word and returns the answer.
func FourLetter(addr, word string, timeout time.Duration) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	if _, err := conn.Write([]byte(word)); err != nil {
		return "", err
	}
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := conn.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return b.String(), nil
}

// WaitServing polls srvr at addr until it reports a Mode, ctx ends, or
// exited closes (the process died).
func WaitServing(ctx context.Context, addr string, exited <-chan struct{}) error {
	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	errExited := fmt.Errorf("process exited before serving on %s", addr)
	go func() {
		select {
		case <-exited:
			cancel(errExited)
		case <-wctx.Done():
		}
	}()
	var last error
	_, err := backoff.Retry(wctx, func() (string, error) {
		mode, err := Mode(addr)
		last = err
		return mode, err
	}, backoff.WithBackOff(backoff.NewConstantBackOff(100*time.Millisecond)), backoff.WithMaxElapsedTime(0))
	switch {
	case err == nil:
		return nil
	case errors.Is(context.Cause(wctx), errExited):
		return errExited
	}
	return fmt.Errorf("not serving on %s: %v (%w)", addr, last, ctx.Err())
}

// StopDir stops servers started detached under dir (by pid files).
func StopDir(dir string) (int, error) {
	matches, _ := filepath.Glob(filepath.Join(dir, "zk*", "zookeeper.pid"))
	stopped := 0
	for _, pf := range matches {
		b, err := os.ReadFile(pf)
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			continue
		}
		if p, err := os.FindProcess(pid); err == nil {
			if p.Signal(syscall.SIGTERM) == nil {
				stopped++
				for i := 0; i < 100 && p.Signal(syscall.Signal(0)) == nil; i++ {
					time.Sleep(50 * time.Millisecond)
				}
				_ = p.Signal(syscall.SIGKILL)
			}
		}
		_ = os.Remove(pf)
	}
	return stopped, nil
}

// Status describes servers under dir started detached.
type Status struct {
	ID     int    `json:"id"`
	Pid    int    `json:"pid"`
	Addr   string `json:"address"`
	Mode   string `json:"mode"`
	Status string `json:"status"`
}

// ServingIn is a server started detached under dir that serves, if
// any does.
func ServingIn(dir string) (Status, bool) {
	for _, st := range StatusDir(dir) {
		if st.Status == "serving" {
			return st, true
		}
	}
	return Status{}, false
}

// StatusDir reports on servers started detached under dir.
func StatusDir(dir string) []Status {
	matches, _ := filepath.Glob(filepath.Join(dir, "zk*", "conf", "zoo.cfg"))
	var out []Status
	for _, cfgPath := range matches {
		nodeDir := filepath.Dir(filepath.Dir(cfgPath))
		id, _ := strconv.Atoi(strings.TrimPrefix(filepath.Base(nodeDir), "zk"))
		st := Status{ID: id, Status: "stopped"}
		if b, err := os.ReadFile(filepath.Join(nodeDir, "zookeeper.pid")); err == nil {
			st.Pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		st.Addr = clientAddr(cfgPath)
		if st.Addr != "" {
			if m, err := Mode(st.Addr); err == nil {
				st.Mode, st.Status = m, "serving"
			} else if st.Pid != 0 && syscall.Kill(st.Pid, 0) == nil {
				st.Status = "starting"
			}
		}
		out = append(out, st)
	}
	return out
}

func clientAddr(cfgPath string) string {
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		return ""
	}
	port := ""
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "clientPort="); ok {
			port = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(l, "dynamicConfigFile="); ok {
			if d, err := os.ReadFile(strings.TrimSpace(v)); err == nil {
				myid, _ := os.ReadFile(filepath.Join(filepath.Dir(filepath.Dir(cfgPath)), "data", "myid"))
				pfx := "server." + strings.TrimSpace(string(myid)) + "="
				for _, dl := range strings.Split(string(d), "\n") {
					if strings.HasPrefix(dl, pfx) {
						if i := strings.LastIndex(dl, ";"); i >= 0 {
							return dl[i+1:]
						}
					}
				}
			}
		}
	}
	if port == "" {
		return ""
	}
	return "127.0.0.1:" + port
}

// WriteStatus writes the table of `paddock zookeeper status` and says
// how many of the servers serve.
func WriteStatus(w io.Writer, sts []Status) (serving int) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVER\tADDRESS\tPID\tSTATUS\tMODE")
	for _, s := range sts {
		if s.Status == "serving" {
			serving++
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\n", s.ID, s.Addr, s.Pid, s.Status, s.Mode)
	}
	tw.Flush()
	return serving
}
