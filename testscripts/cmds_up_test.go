package testscripts

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"paddock/engine/zkserver"
)

func init() {
	commands["zkdirect"] = cmdZKDirect
}

// zkdirect [-t DUR] ZKADDR METRICS_URL MAX: ZooKeeper's live connections
// (mntr zk_num_alive_connections, which counts the mntr connection
// itself) minus the director tunnel's forwarded ones
// (paddock_tunnel_active_connections{tunnel="zookeeper"} at
// METRICS_URL) is at most MAX: every other client reaches ZooKeeper
// through the tunnel. Prints the figures.
func cmdZKDirect(ts *testscript.TestScript, neg bool, args []string) {
	timeout, args := waitArgs(ts, args)
	if len(args) != 3 || neg {
		ts.Fatalf("usage: zkdirect [-t DUR] ZKADDR METRICS_URL MAX")
	}
	max, err := strconv.Atoi(args[2])
	ts.Check(err)
	var alive, tunnelled int
	err = eventually(timeout, func() error {
		code, body, err := httpGet(args[1])
		if err != nil || code != 200 {
			return fmt.Errorf("GET %s: status %d, err %v", args[1], code, err)
		}
		tunnelled = -1
		for _, line := range strings.Split(body, "\n") {
			if v, ok := strings.CutPrefix(line, `paddock_tunnel_active_connections{tunnel="zookeeper"} `); ok {
				f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil {
					return err
				}
				tunnelled = int(f)
			}
		}
		if tunnelled < 0 {
			return fmt.Errorf("no paddock_tunnel_active_connections{tunnel=\"zookeeper\"} at %s", args[1])
		}
		out, err := zkserver.FourLetter(args[0], "mntr", 2*time.Second)
		if err != nil {
			return err
		}
		alive = -1
		for _, line := range strings.Split(out, "\n") {
			if v, ok := strings.CutPrefix(line, "zk_num_alive_connections"); ok {
				if alive, err = strconv.Atoi(strings.TrimSpace(v)); err != nil {
					return err
				}
			}
		}
		if alive < 0 {
			return fmt.Errorf("no zk_num_alive_connections in mntr of %s:\n%s", args[0], out)
		}
		if alive-tunnelled > max {
			return fmt.Errorf("ZooKeeper %s has %d live connections, the tunnel forwards %d: %d reach it directly, more than %d",
				args[0], alive, tunnelled, alive-tunnelled, max)
		}
		return nil
	})
	if err != nil {
		ts.Fatalf("zkdirect: %v", err)
	}
	fmt.Fprintf(ts.Stdout(), "zookeeper alive %d, through the tunnel %d, direct %d\n", alive, tunnelled, alive-tunnelled)
}
