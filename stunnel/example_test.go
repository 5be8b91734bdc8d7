package stunnel_test

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"time"

	"paddock/stunnel"
)

// An allocator fronts its node containers with one tunnel server that
// only proxies may enter; the backend is chosen by SNI.
func ExampleSNIRouter() {
	loader, err := stunnel.NewFileLoader("tls/allocator.crt", "tls/key.pem", "tls/ca.pem", "")
	if err != nil {
		return // the allocator has not joined yet
	}
	nodes := map[string]string{"inst-1": "127.0.0.1:32768"} // instance id → loopback port
	srv, _ := stunnel.NewServer(stunnel.ServerConfig{
		Options: stunnel.Options{Name: "nodes", Loader: loader, Allow: stunnel.Allow{Roles: []string{"proxy"}},
			IdleTimeout: 5 * time.Minute},
		Target: stunnel.SNIRouter(func(id string) (string, bool) { a, ok := nodes[id]; return a, ok }),
	})
	ln, _ := net.Listen("tcp", ":9400")
	go srv.Serve(context.Background(), ln) // returns after draining when the ctx ends
}

// A proxy reaches backends through allocator tunnels with its own
// certificate, naming the instance in the SNI.
func ExampleClient_ReloadingTLSConfig() {
	loader, err := stunnel.NewFileLoader("tls/proxy.crt", "tls/key.pem", "tls/ca.pem", "")
	if err != nil {
		return
	}
	cli, _ := stunnel.NewClient(stunnel.ClientConfig{Options: stunnel.Options{Name: "backends", Loader: loader,
		Allow: stunnel.Allow{Roles: []string{"allocator"}}}})
	base := cli.ReloadingTLSConfig()
	tr := &http.Transport{
		DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			cfg := base.Clone()
			cfg.ServerName = stunnel.BackendSNI("inst-1") // from the route entry
			d := &net.Dialer{Timeout: 10 * time.Second}
			raw, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			tc := tls.Client(raw, cfg)
			return tc, tc.HandshakeContext(ctx)
		},
	}
	_ = tr
}
