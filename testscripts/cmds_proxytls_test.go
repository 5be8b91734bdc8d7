package testscripts

import (
	"context"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"paddock/engine"
)

func init() {
	commands["proxytlsroute"] = cmdProxyTLSRoute
}

// proxytlsroute ID INSTANCE ADDR writes /paddock/routes/ID (live) with
// one elasticsearch backend behind an allocator node tunnel: Address
// ADDR, TLS, InstanceID INSTANCE (the SNI the proxy sends), as the
// constructor writes it when the allocator reports a tunnel.
func cmdProxyTLSRoute(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 {
		ts.Fatalf("usage: proxytlsroute ID INSTANCE ADDR")
	}
	cred, err := engine.LoadCredential(engine.CredentialFile(ts.Getenv("PADDOCK_HOME"), engine.RoleConstructor))
	ts.Check(err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := engine.Connect(ctx, engine.Options{Servers: ts.Getenv("PADDOCK_ZK"), Role: engine.RoleConstructor, Credential: cred})
	ts.Check(err)
	defer s.Close()
	r := engine.Route{DeploymentID: args[0], State: engine.RouteLive, Generation: time.Now().UnixNano(), UpdatedAt: time.Now().UTC(),
		Backends: []engine.Backend{{InstanceID: args[1], Kind: engine.KindElasticsearch, Zone: "zone-1", Allocator: "alloc-1",
			Address: args[2], TLS: true}}}
	ts.Check(s.Put(ctx, engine.RoutePath(r.DeploymentID), r))
}
