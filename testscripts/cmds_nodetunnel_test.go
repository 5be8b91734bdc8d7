package testscripts

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

func init() { commands["nodetunnelused"] = cmdNodeTunnelUsed }

// nodetunnelused UPJSON: the allocators that `paddock up` started (read
// from its up.json) accepted at least one mTLS connection on their node
// tunnels between them: client traffic through the proxy reached the
// nodes over the tunnel, not their plain ports.
func cmdNodeTunnelUsed(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: nodetunnelused path/to/up.json")
	}
	b, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	var st struct {
		Services []struct{ Name, Kind, Metrics string } `json:"services"`
	}
	ts.Check(json.Unmarshal(b, &st))
	total, seen := 0.0, 0
	hc := &http.Client{Timeout: 5 * time.Second}
	for _, s := range st.Services {
		if s.Kind != "allocator" || s.Metrics == "" {
			continue
		}
		seen++
		resp, err := hc.Get("http://" + s.Metrics + "/metrics")
		ts.Check(err)
		var body strings.Builder
		buf := make([]byte, 32<<10)
		for {
			n, err := resp.Body.Read(buf)
			body.Write(buf[:n])
			if err != nil {
				break
			}
		}
		resp.Body.Close()
		for _, line := range strings.Split(body.String(), "\n") {
			if !strings.HasPrefix(line, "paddock_tunnel_connections_total{") {
				continue
			}
			f := strings.Fields(line[strings.LastIndexByte(line, '}')+1:])
			if len(f) > 0 {
				v, _ := strconv.ParseFloat(f[0], 64)
				total += v
			}
		}
	}
	if seen == 0 {
		ts.Fatalf("no allocator with a metrics address in %s", args[0])
	}
	used := total > 0
	ts.Logf("%d allocator(s), %v connections through their node tunnels", seen, total)
	if used == neg {
		ts.Fatalf("%s", fmt.Sprintf("node tunnels used=%v, want %v", used, !neg))
	}
}
