package testscripts

import (
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"paddock/engine"
	"paddock/engine/testenv"
)

func init() {
	commands["allocassign"] = cmdAllocAssign
	commands["allocstatus"] = cmdAllocStatus
	commands["imagecleanup"] = cmdImageCleanup
	commands["allocdrainatend"] = cmdAllocDrainAtEnd
}

// allocdrainatend ALLOC [LABEL=VALUE]: when the script ends, pass or fail, unassign
// every instance of the allocator and wait (30s at most) until it has
// removed their containers. testscript runs deferred commands before it
// stops background processes, so a still-running allocator would
// otherwise re-create what a plain cleanup removes. Pair it with
// `dockercleanup paddock.allocator=ALLOC` (registered first, so it runs
// after) for volumes and leftovers. With LABEL=VALUE (the allocator's
// --label), the deployment networks it made go too.
func cmdAllocDrainAtEnd(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: allocdrainatend ALLOC [LABEL=VALUE]")
	}
	alloc := args[0]
	netLabel := ""
	if len(args) == 2 {
		netLabel = args[1]
	}
	home, zk := ts.Getenv("PADDOCK_HOME"), ts.Getenv("PADDOCK_ZK")
	ts.Defer(func() {
		cred, err := engine.LoadCredential(engine.CredentialFile(home, engine.RoleConstructor))
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
		defer cancel()
		s, err := engine.Connect(ctx, engine.Options{Servers: zk, Role: engine.RoleConstructor, Credential: cred, ConnectTimeout: 5 * time.Second})
		if err != nil {
			return
		}
		defer s.Close()
		kids, _ := s.Children(ctx, engine.InstancesPath(alloc))
		for _, k := range kids {
			_ = s.Delete(ctx, engine.InstancePath(alloc, k), engine.AnyVersion)
		}
		filter := "label=paddock.allocator=" + alloc
		for ctx.Err() == nil {
			out, err := exec.CommandContext(ctx, "docker", "ps", "-aq", "--filter", filter).Output()
			if err != nil || len(out) == 0 {
				break
			}
			if alive, _, err := s.Exists(ctx, engine.AllocatorAlivePath(alloc)); err != nil || !alive {
				// No allocator to remove them: do it here.
				_ = exec.CommandContext(ctx, "docker", append([]string{"rm", "-f"}, strings.Fields(string(out))...)...).Run()
				continue
			}
			testenv.Pause(ctx, 250*time.Millisecond)
		}
		if netLabel != "" {
			out, _ := exec.CommandContext(ctx, "docker", "network", "ls", "-q", "--filter", "label="+netLabel).Output()
			if ids := strings.Fields(string(out)); len(ids) > 0 {
				_ = exec.CommandContext(ctx, "docker", append([]string{"network", "rm"}, ids...)...).Run()
			}
		}
		// Data volumes outlive their containers by design: remove them
		// (retrying while the engine finishes releasing them).
		for ctx.Err() == nil {
			out, err := exec.CommandContext(ctx, "docker", "volume", "ls", "-q", "--filter", filter).Output()
			vols := strings.Fields(string(out))
			if err != nil || len(vols) == 0 {
				return
			}
			_ = exec.CommandContext(ctx, "docker", append([]string{"volume", "rm", "-f"}, vols...)...).Run()
			testenv.Pause(ctx, 250*time.Millisecond)
		}
	})
}

// constructorStore connects to the script's ZooKeeper ($PADDOCK_ZK) as
// the constructor, with the credential `paddock init` wrote.
func constructorStore(ts *testscript.TestScript) *engine.Store {
	cred, err := engine.LoadCredential(engine.CredentialFile(ts.Getenv("PADDOCK_HOME"), engine.RoleConstructor))
	ts.Check(err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := engine.Connect(ctx, engine.Options{Servers: ts.Getenv("PADDOCK_ZK"), Role: engine.RoleConstructor, Credential: cred})
	ts.Check(err)
	return s
}

// allocassign ALLOC IID SIZE VERSION [KIND] writes a desired instance to
// the allocator's path, as the constructor does; `! allocassign ALLOC
// IID` removes it.
func cmdAllocAssign(ts *testscript.TestScript, neg bool, args []string) {
	if (!neg && len(args) < 4) || (neg && len(args) != 2) {
		ts.Fatalf("usage: allocassign ALLOC IID SIZE VERSION [KIND] | ! allocassign ALLOC IID")
	}
	s := constructorStore(ts)
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if neg {
		ts.Check(s.Delete(ctx, engine.InstancePath(args[0], args[1]), engine.AnyVersion))
		return
	}
	size, err := engine.ParseSize(args[2])
	ts.Check(err)
	kind := engine.KindElasticsearch
	if len(args) > 4 {
		kind = args[4]
	}
	in := engine.Instance{ID: args[1], DeploymentID: engine.NewID(), Kind: kind, Version: args[3], SizeMB: size, CreatedAt: time.Now().UTC()}
	ts.Check(s.Create(ctx, engine.InstancePath(args[0], args[1]), in))
}

// allocstatus [-t 60s] ALLOC IID STATE waits until the instance's status
// znode says STATE (running also means healthy; "gone" means no status
// any more) and sets $NODE_ADDR to its address when it has one, and
// $TUNNEL_ADDR to its allocator's tunnel when it has one.
func cmdAllocStatus(ts *testscript.TestScript, neg bool, args []string) {
	timeout := 60 * time.Second
	if len(args) > 2 && args[0] == "-t" {
		d, err := time.ParseDuration(args[1])
		ts.Check(err)
		timeout, args = d, args[2:]
	}
	if len(args) != 3 {
		ts.Fatalf("usage: allocstatus [-t dur] ALLOC IID STATE")
	}
	s := constructorStore(ts)
	defer s.Close()
	last, ok := testenv.WaitEvery(timeout, 200*time.Millisecond, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var st engine.InstanceStatus
		_, err := s.GetJSON(ctx, engine.StatusPath(args[0], args[1]), &st)
		cancel()
		switch {
		case args[2] == "gone" && errors.Is(err, engine.ErrNotFound):
			return true, ""
		case err == nil && st.State == args[2] && (st.State != engine.StateRunning || st.Healthy):
			if st.Address != "" {
				ts.Setenv("NODE_ADDR", st.Address)
			}
			if st.TunnelAddr != "" {
				ts.Setenv("TUNNEL_ADDR", st.TunnelAddr)
			}
			b, _ := json.Marshal(st)
			ts.Logf("status: %s", b)
			return true, ""
		case err == nil:
			b, _ := json.Marshal(st)
			return false, string(b)
		default:
			return false, err.Error()
		}
	})
	if !ok {
		ts.Fatalf("allocstatus %v: not %s within %s (last: %s)", args[:2], args[2], timeout, last)
	}
}

// imagecleanup REF... removes the images when the script ends.
func cmdImageCleanup(ts *testscript.TestScript, neg bool, args []string) {
	ts.Defer(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = exec.CommandContext(ctx, "docker", append([]string{"rmi", "-f"}, args...)...).Run()
	})
}
