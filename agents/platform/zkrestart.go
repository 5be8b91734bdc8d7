package platform

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"paddock/engine/zkserver"
)

// ensureZooKeeper is `paddock up` on a platform that is already up: the
// supervisor and the agents run, but the ZooKeeper it started in the
// state dir may have stopped (a crash, or an operator who moved lost
// data away to restore a backup). It starts it again on the same port
// with the same super password, so the running agents reconnect, and
// says whether it came back empty (then `paddock platform restore`).
// A ZooKeeper the platform did not start (an ensemble elsewhere) is not
// touched.
func ensureZooKeeper(ctx context.Context, dir string, st Status, out io.Writer) error {
	zkDir := filepath.Join(dir, "zookeeper")
	if _, ok := zkserver.ServingIn(zkDir); ok || st.ZooKeeper == "" {
		return nil
	}
	host, p, err := net.SplitHostPort(st.ZooKeeper)
	if err != nil || !net.ParseIP(host).IsLoopback() {
		return nil // not one up started (a single loopback server)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return nil
	}
	if m, _ := filepath.Glob(filepath.Join(zkDir, "zk*", "data", "version-2")); len(m) > 0 {
		fmt.Fprintf(out, "ZooKeeper was not serving in %s: starting it again on %s\n", zkDir, st.ZooKeeper)
	} else {
		fmt.Fprintf(out, "ZooKeeper was not serving in %s and has no data: starting an empty one on %s (the agents reconnect by themselves; bring the platform's state back with `paddock platform restore FILE`)\n", zkDir, st.ZooKeeper)
	}
	if _, err := os.Stat(dir); err != nil {
		return err
	}
	addr, err := startZooKeeper(ctx, dir, port)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "ZooKeeper serving on %s\n", addr)
	return nil
}
