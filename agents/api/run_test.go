package api

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// selfSigned writes a certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "paddock-api-test"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "api.crt"), filepath.Join(dir, "api.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestRunHTTPAndHTTPS runs the agent as `paddock api` does: HTTP and
// HTTPS on free ports, then a graceful stop when ctx ends.
func TestRunHTTPAndHTTPS(t *testing.T) {
	p := env.Fresh(t, "zone-1")
	certFile, keyFile, pool := selfSigned(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrs := make(chan [2]string, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{Store: p.Admin, Addr: "127.0.0.1:0", TLSAddr: "127.0.0.1:0", CertFile: certFile, KeyFile: keyFile,
			MetricsAddr: "127.0.0.1:0", Registry: prometheus.NewRegistry(),
			OnListen: func(h, hs string) { addrs <- [2]string{h, hs} }})
	}()
	var a [2]string
	select {
	case a = <-addrs:
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("API did not listen")
	}
	get := func(c *http.Client, url string) int {
		resp, err := c.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(http.DefaultClient, "http://"+a[0]+Prefix+"/api-docs"); code != 200 {
		t.Fatalf("HTTP api-docs: %d", code)
	}
	tc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if code := get(tc, "https://"+a[1]+Prefix+"/api-docs"); code != 200 {
		t.Fatalf("HTTPS api-docs: %d", code)
	}
	if code := get(tc, "https://"+a[1]+Prefix+"/deployments"); code != 401 {
		t.Fatalf("HTTPS without key: %d", code)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after ctx ended")
	}
	if _, err := http.Get("http://" + a[0] + Prefix + "/api-docs"); err == nil {
		t.Fatal("still serving after shutdown")
	}
}

func TestRunRefusesBadConfig(t *testing.T) {
	p := env.Fresh(t, "zone-1")
	ctx := context.Background()
	for name, cfg := range map[string]Config{
		"no store":      {Addr: "127.0.0.1:0"},
		"nothing":       {Store: p.Admin, Registry: prometheus.NewRegistry()},
		"tls no cert":   {Store: p.Admin, TLSAddr: "127.0.0.1:0", Registry: prometheus.NewRegistry()},
		"bad cert file": {Store: p.Admin, TLSAddr: "127.0.0.1:0", CertFile: "/nonexistent", KeyFile: "/nonexistent", Registry: prometheus.NewRegistry()},
	} {
		t.Run(name, func(t *testing.T) {
			if err := Run(ctx, cfg); err == nil {
				t.Fatal("Run accepted a bad config")
			}
		})
	}
}
