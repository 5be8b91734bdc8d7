package allocator

import (
	"testing"
	"time"

	"paddock/stunnel"
)

// TestTunnelDefaults: the node tunnel is on (:9400) exactly when a
// certificate is configured, "-" turns it off, and it advertises Host.
func TestTunnelDefaults(t *testing.T) {
	ca, _, err := stunnel.NewCA("t", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	key, keyPEM, _ := stunnel.GenerateKey()
	cert, err := ca.Issue(key.Public(), stunnel.Leaf{Identity: stunnel.Identity{Role: "allocator", ID: "h"}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	l, err := stunnel.NewPEMLoader(cert, keyPEM, ca.CertPEM, nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name             string
		loader           *stunnel.Loader
		listen, host     string
		wantListen, want string
	}{
		{"no certificate: off", nil, "", "", "", "10.0.0.5"},
		{"no certificate, address given: off", nil, ":9400", "", "", "10.0.0.5"},
		{"certificate: default port", l, "", "", DefaultTunnelListen, "10.0.0.5"},
		{"certificate, disabled", l, "-", "", "", "10.0.0.5"},
		{"certificate, own address", l, "127.0.0.1:0", "", "127.0.0.1:0", "10.0.0.5"},
		{"advertised host given", l, "", "tunnel.example", DefaultTunnelListen, "tunnel.example"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := Config{ID: "a1", Zone: "z", StateDir: t.TempDir(), Host: "10.0.0.5",
				TunnelLoader: c.loader, TunnelListen: c.listen, TunnelHost: c.host}
			if err := cfg.defaults(); err != nil {
				t.Fatal(err)
			}
			if cfg.TunnelListen != c.wantListen || cfg.TunnelHost != c.want {
				t.Fatalf("listen %q host %q, want %q %q", cfg.TunnelListen, cfg.TunnelHost, c.wantListen, c.want)
			}
		})
	}
}
