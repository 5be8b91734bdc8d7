package testscripts

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"paddock/engine/testenv"
	"paddock/engine/zkserver"
)

func init() {
	commands["zk"] = cmdZK
	commands["waitfor"] = cmdWaitFor
}

// zk start [servers] | zk stop | zk kill N
//
// start runs a ZooKeeper of the script's own (free ports, killed at the
// end of the script) and sets PADDOCK_ZK to its connection string and
// ZK_SUPER to its super password.
func cmdZK(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) == 0 {
		ts.Fatalf("usage: zk start [servers] | zk stop")
	}
	key := "zkcluster"
	switch args[0] {
	case "start":
		n := 1
		if len(args) > 1 {
			n, _ = strconv.Atoi(args[1])
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		super := "super-" + strconv.Itoa(os.Getpid())
		c, err := zkserver.Start(ctx, zkserver.Config{Dir: ts.MkAbs("zk"), Servers: n, SuperPassword: super, HeapMB: 128})
		if err != nil {
			if os.Getenv("CI") != "true" {
				ts.Logf("ZooKeeper unavailable: %v", err)
				ts.Fatalf("cannot start ZooKeeper (run scripts/setup.sh)")
			}
			ts.Fatalf("cannot start ZooKeeper under CI: %v", err)
		}
		clustersMu.Lock()
		clusters[ts] = c
		clustersMu.Unlock()
		ts.Defer(c.Stop)
		ts.Setenv("PADDOCK_ZK", c.ConnectString())
		ts.Setenv("ZK_SUPER", super)
	case "stop":
		if c := clusterOf(ts); c != nil {
			c.Stop()
		}
	case "restart":
		c := clusterOf(ts)
		if c == nil {
			ts.Fatalf("zk restart: no ZooKeeper started in this script")
		}
		for _, n := range c.Nodes {
			ts.Check(c.StartNode(n.ID))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		ts.Check(c.WaitReady(ctx))
	default:
		ts.Fatalf("zk: unknown verb %q (%s)", args[0], key)
	}
}

var (
	clustersMu sync.Mutex
	clusters   = map[*testscript.TestScript]*zkserver.Cluster{}
)

func clusterOf(ts *testscript.TestScript) *zkserver.Cluster {
	clustersMu.Lock()
	defer clustersMu.Unlock()
	return clusters[ts]
}

// waitfor [-t 30s] cmd args... runs a script command until it succeeds or
// the deadline passes (a condition with a deadline, never a bare sleep).
func cmdWaitFor(ts *testscript.TestScript, neg bool, args []string) {
	timeout := 60 * time.Second
	if len(args) > 2 && args[0] == "-t" {
		d, err := time.ParseDuration(args[1])
		ts.Check(err)
		timeout, args = d, args[2:]
	}
	if len(args) == 0 {
		ts.Fatalf("usage: waitfor [-t dur] command args...")
	}
	last, ok := testenv.WaitEvery(timeout, 250*time.Millisecond, func() (bool, string) {
		err := ts.Exec(args[0], args[1:]...)
		return (err == nil) != neg, fmt.Sprint(err)
	})
	if !ok {
		ts.Fatalf("waitfor %v: not true within %s (last: %v)", args, timeout, last)
	}
}
