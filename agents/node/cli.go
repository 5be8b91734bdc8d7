package node

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"
)

// Main is the node's command line (`paddock node ...`, also the entry
// point and HEALTHCHECK of node images): it runs the server, or with
// "healthcheck" probes one, or with "dial" tests reachability of
// addresses from where it runs (container isolation checks). It returns
// the exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "healthcheck":
			return healthcheck(ctx, args[1:], stdout, stderr)
		case "dial":
			return dial(args[1:], stdout, stderr)
		}
	}
	return serve(ctx, args, stdout, stderr)
}

func newFlags(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s\n\nFlags:\n", usage)
		fs.PrintDefaults()
	}
	return fs
}

// exit codes
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

func parse(fs *flag.FlagSet, args []string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, false
		}
		return exitUsage, false
	}
	if fs.NArg() > 0 && fs.Name() != "dial" {
		fmt.Fprintf(fs.Output(), "unexpected arguments: %v\n", fs.Args())
		return exitUsage, false
	}
	return 0, true
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("node", "paddock node [flags] | paddock node healthcheck [flags] | paddock node dial [flags] ADDRESS...", stderr)
	listen := fs.String("listen", ":9200", "address to serve on")
	var cfg Config
	fs.StringVar(&cfg.Name, "name", "", "node name (default: host name)")
	fs.StringVar(&cfg.ClusterName, "cluster-name", "paddock", "cluster name (the deployment id)")
	fs.StringVar(&cfg.Version, "version", "8.17.0", "version the node reports (baked into images)")
	fs.StringVar(&cfg.Kind, "kind", KindElasticsearch, "elasticsearch or kibana")
	fs.StringVar(&cfg.DataDir, "data-dir", "/data", "data directory (a volume in containers)")
	fs.StringVar(&cfg.SnapshotRoot, "snapshot-root", ContainerSnapshotRoot, "directory fs snapshot repositories must live under")
	fs.StringVar(&cfg.PeerEgress, "peer-egress", "", "unix socket of the allocator's egress: copies at <instance>"+PeerHostSuffix+" are reached through it (allocators set it)")
	fs.BoolVar(&cfg.RequireSecurity, "require-credentials", false, "refuse every request until the credentials file ("+SecurityFileName+" in the data directory) exists")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	format := fs.String("log-format", "json", "log format: json or text")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	log, err := newLogger(stderr, *level, *format)
	if err != nil {
		fmt.Fprintf(stderr, "paddock node: %v\n", err)
		return exitUsage
	}
	cfg.Logger = log
	tuneGC(log)
	srv, err := NewServer(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "paddock node: %v\n", err)
		return exitFailure
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "paddock node: listen on %s: %v (choose another address with --listen)\n", *listen, err)
		return exitFailure
	}
	c := srv.Config()
	log.Info("node serving", "addr", ln.Addr().String(), "name", c.Name, "cluster", c.ClusterName, "kind", c.Kind,
		"version", c.Version, "data_dir", c.DataDir)
	err = srv.Serve(ctx, ln)
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("node stopped", "err", err)
		return exitFailure
	}
	log.Info("node stopped")
	return exitOK
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("invalid --log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "json", "auto":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("invalid --log-format %q: use json or text", format)
}

func healthcheck(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("healthcheck", "paddock node healthcheck [--url URL] [--wait D]: exit 0 when the node answers its health endpoint", stderr)
	u := fs.String("url", "http://127.0.0.1:9200"+HealthPath, "health endpoint to probe")
	wait := fs.Duration("wait", 2*time.Second, "give up after this long")
	creds := fs.String("credentials", "/data/"+SecurityFileName, "credentials file whose platform identity the probe presents (absent: none)")
	fs.String("log-level", "info", "ignored (accepted for symmetry with the server)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	ctx, cancel := context.WithTimeout(ctx, *wait)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *u, nil)
	if err != nil {
		fmt.Fprintf(stderr, "invalid --url %q: %v\n", *u, err)
		return exitUsage
	}
	if f, err := ReadSecurityFile(*creds); err == nil {
		f.Platform.SetAuth(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "node unhealthy: %v\n", err)
		return exitFailure
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "node unhealthy: %s answered %s\n", *u, resp.Status)
		return exitFailure
	}
	fmt.Fprintln(stdout, "healthy")
	return exitOK
}

func dial(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("dial", "paddock node dial [--timeout D] [--expect-unreachable] ADDRESS...: try to connect to host:port or unix:///path addresses", stderr)
	timeout := fs.Duration("timeout", 2*time.Second, "connect timeout per address")
	expectUnreachable := fs.Bool("expect-unreachable", false, "succeed only if no address is reachable (default: only if all are)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return exitUsage
	}
	reachable := 0
	for _, a := range fs.Args() {
		network, addr := "tcp", a
		if p, ok := strings.CutPrefix(a, "unix://"); ok {
			network, addr = "unix", p
		}
		conn, err := net.DialTimeout(network, addr, *timeout)
		if err != nil {
			fmt.Fprintf(stdout, "%s unreachable: %v\n", a, err)
			continue
		}
		conn.Close()
		reachable++
		fmt.Fprintf(stdout, "%s reachable\n", a)
	}
	switch {
	case *expectUnreachable && reachable > 0:
		fmt.Fprintf(stderr, "%d of %d addresses are reachable\n", reachable, fs.NArg())
		return exitFailure
	case !*expectUnreachable && reachable < fs.NArg():
		fmt.Fprintf(stderr, "%d of %d addresses are unreachable\n", fs.NArg()-reachable, fs.NArg())
		return exitFailure
	}
	return exitOK
}
