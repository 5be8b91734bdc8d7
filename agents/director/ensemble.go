package director

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/go-zookeeper/zk"

	"paddock/engine/zkserver"
)

// ZKServer is one server of the ZooKeeper ensemble, as in its dynamic
// configuration: server.<ID>=<Host>:<PeerPort>:<ElectPort>:<Role>;<Client>.
type ZKServer struct {
	ID        int    `json:"id"`
	Host      string `json:"host"`
	PeerPort  int    `json:"peer_port"`
	ElectPort int    `json:"elect_port"`
	// Role is participant (votes) or observer.
	Role string `json:"role"`
	// Client is the client address (host:port), loopback in paddock.
	Client string `json:"client"`
}

// Line is the server's dynamic-configuration line.
func (s ZKServer) Line() string {
	role := s.Role
	if role == "" {
		role = "participant"
	}
	return fmt.Sprintf("server.%d=%s:%d:%d:%s;%s", s.ID, s.Host, s.PeerPort, s.ElectPort, role, s.Client)
}

// ParseZKConfig reads /zookeeper/config (or a dynamic config file): the
// servers and the config version.
func ParseZKConfig(data string) ([]ZKServer, string, error) {
	var out []ZKServer
	version := ""
	for _, line := range strings.Split(data, "\n") {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "version="); ok {
			version = v
			continue
		}
		rest, ok := strings.CutPrefix(line, "server.")
		if !ok {
			continue
		}
		idStr, spec, ok := strings.Cut(rest, "=")
		id, err := strconv.Atoi(idStr)
		if !ok || err != nil {
			return nil, "", fmt.Errorf("bad server line %q", line)
		}
		quorum, client, _ := strings.Cut(spec, ";")
		parts := strings.Split(quorum, ":")
		if len(parts) < 3 {
			return nil, "", fmt.Errorf("bad server line %q", line)
		}
		s := ZKServer{ID: id, Host: parts[0], Role: "participant", Client: client}
		s.PeerPort, _ = strconv.Atoi(parts[1])
		s.ElectPort, _ = strconv.Atoi(parts[2])
		if len(parts) > 3 {
			s.Role = parts[3]
		}
		if c, ok := strings.CutPrefix(s.Client, "0.0.0.0:"); ok {
			s.Client = s.Host + ":" + c
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, version, nil
}

// EnsembleMember is a server with what it says of itself.
type EnsembleMember struct {
	ZKServer
	// Mode is leader, follower, observer, standalone or "down".
	Mode string `json:"mode"`
}

// EnsembleStatus is the ensemble's membership, leader and quorum.
type EnsembleStatus struct {
	Members []EnsembleMember `json:"members"`
	Version string           `json:"version"`
	Leader  int              `json:"leader"`
	Voters  int              `json:"voters"`
	Up      int              `json:"voters_up"`
	Quorum  bool             `json:"quorum"`
	// ModesUnknown: no member answered srvr from here (their client
	// ports are other hosts' loopback); the quorum is then inferred from
	// the session having read the configuration.
	ModesUnknown bool `json:"modes_unknown,omitempty"`
}

// Ensemble reads the ensemble's configuration through conn and asks each
// member's srvr for its mode.
func Ensemble(ctx context.Context, conn *zk.Conn) (EnsembleStatus, error) {
	var st EnsembleStatus
	data, _, err := conn.Get("/zookeeper/config")
	if err != nil {
		return st, fmt.Errorf("read /zookeeper/config: %w", err)
	}
	servers, version, err := ParseZKConfig(string(data))
	if err != nil {
		return st, err
	}
	st.Version = version
	for _, s := range servers {
		m := EnsembleMember{ZKServer: s, Mode: "down"}
		if mode, err := zkserver.Mode(s.Client); err == nil {
			m.Mode = mode
		}
		if s.Role == "participant" {
			st.Voters++
			if m.Mode != "down" {
				st.Up++
			}
		}
		if m.Mode == "leader" || m.Mode == "standalone" {
			st.Leader = s.ID
		}
		st.Members = append(st.Members, m)
	}
	st.Quorum = st.Voters > 0 && st.Up > st.Voters/2 && st.Leader != 0
	if st.Voters > 0 && st.Up == 0 {
		// A server without quorum serves no reads: this one answered.
		st.ModesUnknown, st.Quorum = true, true
	}
	return st, ctx.Err()
}

// AddServer adds s to the ensemble by dynamic reconfiguration. conn must
// be authenticated as ZooKeeper's super user. The new server must
// already run with a configuration naming the current ensemble and
// itself (StartZKServer).
func AddServer(ctx context.Context, conn *zk.Conn, s ZKServer) error {
	return reconfigRetry(ctx, func() error {
		_, err := conn.IncrementalReconfig([]string{s.Line()}, nil, -1)
		return err
	}, fmt.Sprintf("add ZooKeeper server %d (%s)", s.ID, s.Line()))
}

// RemoveServer removes server id from the ensemble (super user).
func RemoveServer(ctx context.Context, conn *zk.Conn, id int) error {
	return reconfigRetry(ctx, func() error {
		_, err := conn.IncrementalReconfig(nil, []string{strconv.Itoa(id)}, -1)
		return err
	}, fmt.Sprintf("remove ZooKeeper server %d", id))
}

// reconfigRetry retries a reconfig while the ensemble is busy with
// another one or the new server is still syncing.
func reconfigRetry(ctx context.Context, fn func() error, what string) error {
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		err := fn()
		switch {
		case err == nil:
			return struct{}{}, nil
		case errors.Is(err, zk.ErrNoAuth):
			return struct{}{}, backoff.Permanent(fmt.Errorf("%w (reconfig needs ZooKeeper's super user: give the director --zk-super-password)", err))
		case errors.Is(err, zk.ErrBadArguments):
			return struct{}{}, backoff.Permanent(err)
		}
		return struct{}{}, err
	}, backoff.WithBackOff(backoff.NewConstantBackOff(500*time.Millisecond)), backoff.WithMaxElapsedTime(60*time.Second))
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// LocalZK is a ZooKeeper server process run by this host's director.
type LocalZK struct {
	Server ZKServer
	Dir    string
	cmd    *exec.Cmd
	exited chan struct{}
}

// ZKServerConfig describes a server to start.
type ZKServerConfig struct {
	Dir string
	// Self is this server; Ensemble the current members (Self is added
	// when missing). A first server has Ensemble empty.
	Self          ZKServer
	Ensemble      []ZKServer
	SuperPassword string
	HeapMB        int
}

// StartZKServer writes a fresh reconfig-enabled configuration and starts
// the server, waiting until it serves. A joining server syncs from the
// leader and votes once AddServer ran.
func StartZKServer(ctx context.Context, cfg ZKServerConfig) (*LocalZK, error) {
	if cfg.HeapMB == 0 {
		cfg.HeapMB = 128
	}
	if cfg.Self.Role == "" {
		cfg.Self.Role = "participant"
	}
	conf, data := filepath.Join(cfg.Dir, "conf"), filepath.Join(cfg.Dir, "data")
	_ = os.RemoveAll(conf)
	for _, d := range []string{conf, data} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	members := []ZKServer{}
	for _, s := range cfg.Ensemble {
		if s.ID != cfg.Self.ID {
			members = append(members, s)
		}
	}
	members = append(members, cfg.Self)
	var lines strings.Builder
	for _, s := range members {
		lines.WriteString(s.Line() + "\n")
	}
	dyn := filepath.Join(conf, "zoo.cfg.dynamic")
	if err := os.WriteFile(dyn, []byte(lines.String()), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(data, "myid"), []byte(strconv.Itoa(cfg.Self.ID)+"\n"), 0o644); err != nil {
		return nil, err
	}
	zooCfg := fmt.Sprintf("tickTime=500\ninitLimit=20\nsyncLimit=10\ndataDir=%s\nadmin.enableServer=false\n"+
		"4lw.commands.whitelist=ruok,srvr,mntr,conf,stat\nmaxSessionTimeout=60000\nminSessionTimeout=1000\n"+
		"reconfigEnabled=true\nstandaloneEnabled=false\ndynamicConfigFile=%s\n", data, dyn)
	if err := os.WriteFile(filepath.Join(conf, "zoo.cfg"), []byte(zooCfg), 0o644); err != nil {
		return nil, err
	}
	args := []string{fmt.Sprintf("-Xmx%dm", cfg.HeapMB), "-XX:+UseSerialGC", "-Dzookeeper.jmx.log4j.disable=true",
		"-Dorg.slf4j.simpleLogger.defaultLogLevel=warn"}
	if cfg.SuperPassword != "" {
		args = append(args, "-Dzookeeper.DigestAuthenticationProvider.superDigest="+zkserver.SuperDigest(cfg.SuperPassword))
	}
	args = append(args, "-cp", zkserver.DefaultClasspath, "org.apache.zookeeper.server.quorum.QuorumPeerMain", filepath.Join(conf, "zoo.cfg"))
	logf, err := os.OpenFile(filepath.Join(cfg.Dir, "zookeeper.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("java", args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start ZooKeeper server %d: %w (is Debian's zookeeper package installed?)", cfg.Self.ID, err)
	}
	logf.Close()
	z := &LocalZK{Server: cfg.Self, Dir: cfg.Dir, cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(z.exited) }()
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := zkserver.WaitServing(wctx, cfg.Self.Client, z.exited); err != nil {
		z.Stop()
		return nil, fmt.Errorf("ZooKeeper server %d: %w; see %s", cfg.Self.ID, err, filepath.Join(cfg.Dir, "zookeeper.log"))
	}
	return z, nil
}

// Stop kills the server (a crash, as far as the ensemble can tell).
func (z *LocalZK) Stop() {
	if z.cmd == nil || z.cmd.Process == nil {
		return
	}
	_ = z.cmd.Process.Kill()
	select {
	case <-z.exited:
	case <-time.After(10 * time.Second):
	}
}

// NewLoopbackServer picks free loopback ports for server id.
func NewLoopbackServer(id int) (ZKServer, error) {
	var ports [3]int
	for i := range ports {
		p, err := zkserver.FreePort()
		if err != nil {
			return ZKServer{}, err
		}
		ports[i] = p
	}
	return ZKServer{ID: id, Host: "127.0.0.1", PeerPort: ports[0], ElectPort: ports[1], Role: "participant",
		Client: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[2]))}, nil
}

// WriteText writes the ensemble block of `paddock status` and `paddock
// director ensemble` (nothing for a standalone server).
func (st EnsembleStatus) WriteText(w io.Writer) {
	if len(st.Members) == 0 {
		return
	}
	quorum := "yes"
	if !st.Quorum {
		quorum = "NO"
	}
	if st.ModesUnknown {
		fmt.Fprintf(w, "ensemble: %d voters, quorum yes (modes not reachable from this host)\n", st.Voters)
	} else {
		fmt.Fprintf(w, "ensemble: %d voters, %d up, leader %d, quorum %s\n", st.Voters, st.Up, st.Leader, quorum)
	}
	for _, m := range st.Members {
		fmt.Fprintf(w, "  server.%d  %-11s %-10s %s\n", m.ID, m.Role, m.Mode, m.Client)
	}
}
