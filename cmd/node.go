package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"paddock/agents/node"
)

// newNodeCmd: `paddock node` runs the stand-in search node (the workload
// of node containers); `node healthcheck` is the image's HEALTHCHECK and
// `node dial` a connectivity probe used to prove container isolation.
func newNodeCmd(app *App) *cobra.Command {
	c := &cobra.Command{
		Use:   "node",
		Short: "Run the stand-in search node (inside a container)",
		Long: `Run the stand-in search node: an Elasticsearch-compatible HTTP subset
(documents, search, bulk, snapshots) with its data under --data-dir.
Allocators run it inside paddock/node:<version> containers; it also runs
on a host for demos and tests.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f := cmd.Flags()
			listen, _ := f.GetString("listen")
			cfg := node.Config{Logger: app.Log}
			cfg.Name, _ = f.GetString("name")
			cfg.ClusterName, _ = f.GetString("cluster-name")
			cfg.Version, _ = f.GetString("version")
			cfg.Kind, _ = f.GetString("kind")
			cfg.DataDir, _ = f.GetString("data-dir")
			cfg.SnapshotRoot, _ = f.GetString("snapshot-root")
			srv, err := node.NewServer(cfg)
			if err != nil {
				return err
			}
			defer srv.Close()
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("listen on %s: %w (choose another address with --listen)", listen, err)
			}
			app.Log.Info("node serving", "addr", ln.Addr().String(), "name", cfg.Name, "kind", cfg.Kind,
				"version", srv.Config().Version, "data_dir", cfg.DataDir)
			err = srv.Serve(app.Ctx, ln)
			if errors.Is(err, http.ErrServerClosed) {
				err = nil
			}
			app.Log.Info("node stopped")
			return err
		},
	}
	f := c.Flags()
	f.String("listen", ":9200", "address to serve on")
	f.String("name", "", "node name (default: host name)")
	f.String("cluster-name", "paddock", "cluster name (the deployment id)")
	f.String("version", "8.17.0", "version the node reports (baked into images)")
	f.String("kind", "elasticsearch", "elasticsearch or kibana")
	f.String("data-dir", "/data", "data directory (a volume in containers)")
	f.String("snapshot-root", node.ContainerSnapshotRoot, "directory fs snapshot repositories must live under")

	hc := &cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 when the node at --url answers its health endpoint (the image's HEALTHCHECK)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			u, _ := cmd.Flags().GetString("url")
			to, _ := cmd.Flags().GetDuration("wait")
			ctx, cancel := context.WithTimeout(app.Ctx, to)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			if err != nil {
				return usageErr("invalid --url %q: %v", u, err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return fmt.Errorf("node unhealthy: %w", err)
			}
			defer resp.Body.Close()
			_, _ = io.Copy(io.Discard, resp.Body)
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("node unhealthy: %s answered %s", u, resp.Status)
			}
			return nil
		},
	}
	hc.Flags().String("url", "http://127.0.0.1:9200"+node.HealthPath, "health endpoint to probe")
	hc.Flags().Duration("wait", 2*time.Second, "give up after this long")
	c.AddCommand(hc)

	dial := &cobra.Command{
		Use:   "dial ADDRESS...",
		Short: "Try to connect to each address (host:port, or unix:///path); print reachable/unreachable, exit 1 if any is reachable with --expect-unreachable",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			to, _ := cmd.Flags().GetDuration("timeout")
			expectUnreachable, _ := cmd.Flags().GetBool("expect-unreachable")
			reachable := 0
			for _, a := range args {
				network, addr := "tcp", a
				if p, ok := strings.CutPrefix(a, "unix://"); ok {
					network, addr = "unix", p
				}
				conn, err := net.DialTimeout(network, addr, to)
				if err != nil {
					fmt.Fprintf(app.Out, "%s unreachable: %v\n", a, err)
					continue
				}
				conn.Close()
				reachable++
				fmt.Fprintf(app.Out, "%s reachable\n", a)
			}
			if expectUnreachable && reachable > 0 {
				return fmt.Errorf("%d of %d addresses are reachable", reachable, len(args))
			}
			if !expectUnreachable && reachable < len(args) {
				return fmt.Errorf("%d of %d addresses are unreachable", len(args)-reachable, len(args))
			}
			return nil
		},
	}
	dial.Flags().Duration("timeout", 2*time.Second, "connect timeout per address")
	dial.Flags().Bool("expect-unreachable", false, "succeed only if no address is reachable")
	c.AddCommand(dial)
	return c
}
