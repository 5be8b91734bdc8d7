package testscripts

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"paddock/engine"
	"paddock/engine/testenv"
)

func init() {
	commands["httpbackend"] = cmdHTTPBackend
	commands["proxyroute"] = cmdProxyRoute
	commands["proxyget"] = cmdProxyGet
}

// httpbackend NAME VAR starts an HTTP server on loopback answering
// {"name":NAME} (header X-Backend: NAME) and sets VAR to its host:port.
// It stops when the script ends.
func cmdHTTPBackend(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: httpbackend NAME VAR")
	}
	name := args[0]
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend", name)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, "{\"name\":%q}\n", name)
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	ts.Defer(func() { srv.Close() })
	ts.Setenv(args[1], ln.Addr().String())
}

// proxyroute ID STATE ZONE:ADDR... writes /paddock/routes/ID as the
// constructor does (credentials from $PADDOCK_HOME, ZooKeeper from
// $PADDOCK_ZK), one elasticsearch backend per ZONE:ADDR.
func cmdProxyRoute(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: proxyroute ID live|paused [ZONE:ADDR...]")
	}
	cred, err := engine.LoadCredential(engine.CredentialFile(ts.Getenv("PADDOCK_HOME"), engine.RoleConstructor))
	ts.Check(err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := engine.Connect(ctx, engine.Options{Servers: ts.Getenv("PADDOCK_ZK"), Role: engine.RoleConstructor, Credential: cred})
	ts.Check(err)
	defer s.Close()
	r := engine.Route{DeploymentID: args[0], State: args[1], Generation: time.Now().UnixNano(), UpdatedAt: time.Now().UTC()}
	for i, b := range args[2:] {
		zone, addr, ok := strings.Cut(b, ":")
		if !ok {
			ts.Fatalf("backend %q: want ZONE:HOST:PORT", b)
		}
		r.Backends = append(r.Backends, engine.Backend{InstanceID: "i-" + strconv.Itoa(i), Kind: engine.KindElasticsearch,
			Zone: zone, Allocator: "alloc-" + zone, Address: addr})
	}
	ts.Check(s.Put(ctx, engine.RoutePath(r.DeploymentID), r))
}

// proxyget [-w DUR] HOST URL [CODE [REGEXP]] sends GET URL with the
// Host header HOST and prints the body on stdout; with CODE it fails
// unless the status is CODE and the body matches REGEXP (with !, unless
// they do not). -w retries until it holds or DUR passes (waitfor runs
// programs only, not script commands).
func cmdProxyGet(ts *testscript.TestScript, neg bool, args []string) {
	wait := time.Duration(0)
	if len(args) > 2 && args[0] == "-w" {
		d, err := time.ParseDuration(args[1])
		ts.Check(err)
		wait, args = d, args[2:]
	}
	if len(args) < 2 || len(args) > 4 {
		ts.Fatalf("usage: proxyget [-w DUR] HOST URL [CODE [REGEXP]]")
	}
	want := -1
	if len(args) >= 3 {
		n, err := strconv.Atoi(args[2])
		ts.Check(err)
		want = n
	}
	var re *regexp.Regexp
	if len(args) == 4 {
		re = regexp.MustCompile(args[3])
	}
	c := &http.Client{Timeout: 10 * time.Second}
	var problem string
	var body []byte
	_, ok := testenv.WaitEvery(wait, 100*time.Millisecond, func() (bool, string) {
		req, err := http.NewRequest(http.MethodGet, args[1], nil)
		ts.Check(err)
		req.Host = args[0]
		problem, body = "", nil
		resp, err := c.Do(req)
		if err != nil {
			problem = err.Error()
		} else {
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			switch {
			case want >= 0 && resp.StatusCode != want:
				problem = fmt.Sprintf("status %d, want %d", resp.StatusCode, want)
			case re != nil && !re.Match(body):
				problem = fmt.Sprintf("body does not match %s", re)
			}
		}
		return (problem == "") != neg || want < 0 && err == nil, ""
	})
	switch {
	case ok:
		fmt.Fprintf(ts.Stdout(), "%s", body)
	case neg:
		ts.Fatalf("GET %s (Host %s): status and body match, want them not to: %s", args[1], args[0], body)
	default:
		ts.Fatalf("GET %s (Host %s): %s: %s", args[1], args[0], problem, body)
	}
}
