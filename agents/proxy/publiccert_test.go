package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"paddock/engine"
	"paddock/stunnel"
)

// TestPublicHTTPSCertificates: with the platform CA, the HTTPS listener
// answers each deployment host with a certificate for exactly that name
// (which OpenSSL-based clients need under a one-label domain such as
// localhost), anything else with the domain's wildcard, never a name
// that is not a deployment; a client trusting only the CA gets through.
func TestPublicHTTPSCertificates(t *testing.T) {
	ca, _, err := stunnel.NewCA("paddock test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	b := newTestBackend(t, "b1")
	p := startProxy(t, func(c *Config) {
		c.HTTPSAddr = "127.0.0.1:0"
		c.PublicCA = ca
	})
	p.setTable(map[string]engine.Route{testID: liveRoute(testID, 1, esBackend("i1", "z1", "a1", b.addr()))}, nil)
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)

	tests := []struct {
		sni       string
		wantNames []string
	}{
		{testID + ".localhost", []string{testID + ".localhost"}},
		{"LOCALHOST", []string{"localhost", "*.localhost"}},
		{"not-a-deployment.localhost", []string{"localhost", "*.localhost"}},
		{"evil.example.com", []string{"localhost", "*.localhost"}},
		{"", []string{"localhost", "*.localhost"}},
	}
	for _, tt := range tests {
		t.Run(tt.sni, func(t *testing.T) {
			conn, err := tls.Dial("tcp", p.HTTPSAddr(), &tls.Config{ServerName: tt.sni, InsecureSkipVerify: true})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			leaf := conn.ConnectionState().PeerCertificates[0]
			if got := leaf.DNSNames; len(got) != len(tt.wantNames) || got[0] != tt.wantNames[0] {
				t.Fatalf("certificate names %v, want %v", got, tt.wantNames)
			}
			if len(leaf.URIs) != 0 {
				t.Fatalf("a public certificate carries a paddock identity: %v", leaf.URIs)
			}
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: tt.wantNames[0]}); err != nil {
				t.Fatalf("does not verify against the platform CA: %v", err)
			}
		})
	}

	// A client that trusts only the CA and dials the deployment's name.
	host := testID + ".localhost"
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, p.HTTPSAddr())
		},
	}}
	_, port, _ := net.SplitHostPort(p.HTTPSAddr())
	resp, err := c.Get("https://" + host + ":" + port + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Backend") != "b1" {
		t.Fatalf("HTTPS through the proxy: %d %q %s", resp.StatusCode, resp.Header.Get("X-Backend"), body)
	}
}

func TestPublicCertsRenewAndBound(t *testing.T) {
	ca, _, err := stunnel.NewCA("paddock test CA", 30*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	pc, err := newPublicCerts(ca, func() string { return "example.test" }, func(id string) bool { return id == "d1" })
	if err != nil {
		t.Fatal(err)
	}
	pc.now = func() time.Time { return now }
	first, err := pc.getCertificate(&tls.ClientHelloInfo{ServerName: "d1.example.test"})
	if err != nil {
		t.Fatal(err)
	}
	again, _ := pc.getCertificate(&tls.ClientHelloInfo{ServerName: "d1.example.test"})
	if again != first {
		t.Fatal("a fresh certificate was minted again instead of cached")
	}
	// Past two thirds of its life, the next handshake gets a new one.
	now = renewAt(first.Leaf).Add(time.Second)
	renewed, _ := pc.getCertificate(&tls.ClientHelloInfo{ServerName: "d1.example.test"})
	if renewed == first || renewed.Leaf.SerialNumber.Cmp(first.Leaf.SerialNumber) == 0 {
		t.Fatal("a certificate near its end was not renewed")
	}
	if _, err := newPublicCerts(&stunnel.CA{Cert: ca.Cert}, nil, nil); err == nil {
		t.Fatal("a CA without its key was accepted")
	}
}

// TestHTTPSOnly: with no HTTP address the proxy serves HTTPS alone; with
// neither it refuses to start, saying why.
func TestHTTPSOnly(t *testing.T) {
	ca, _, err := stunnel.NewCA("paddock test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Logger: quietLogger()}); err == nil || !strings.Contains(err.Error(), "serve nothing") {
		t.Fatalf("no listener at all: %v", err)
	}
	b := newTestBackend(t, "b1")
	p := startProxy(t, func(c *Config) {
		c.HTTPAddr = ""
		c.HTTPSAddr = "127.0.0.1:0"
		c.PublicCA = ca
	})
	if p.HTTPAddr() != "" {
		t.Fatalf("HTTP address %q with HTTP off", p.HTTPAddr())
	}
	p.setTable(map[string]engine.Route{testID: liveRoute(testID, 1, esBackend("i1", "z1", "a1", b.addr()))}, nil)
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: testID + ".localhost"}}}
	req, _ := http.NewRequest(http.MethodGet, "https://"+p.HTTPSAddr()+"/", nil)
	req.Host = testID + ".localhost"
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Backend") != "b1" {
		t.Fatalf("HTTPS only: %d from %q", resp.StatusCode, resp.Header.Get("X-Backend"))
	}
}
