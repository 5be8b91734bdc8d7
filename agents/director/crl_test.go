package director

import (
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"paddock/engine"
	"paddock/stunnel"
)

// TestCRLFetchedOncePerHost: the agents of one host share its state
// dir; however many roles run, the revocation list is fetched about once
// per interval, and every agent's loader picks it up.
func TestCRLFetchedOncePerHost(t *testing.T) {
	dir := t.TempDir()
	for r, c := range engine.GenerateCredentials() {
		if err := engine.SaveCredential(engine.CredentialFile(dir, r), c); err != nil {
			t.Fatal(err)
		}
	}
	ca, _, err := LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	crl, err := ca.CRL(1, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// The director's enrollment endpoint, serving the list and counting.
	var fetches atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/crl" {
			fetches.Add(1)
		}
		w.Write(crl)
	}))
	key, keyPEM, err := stunnel.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := ca.Issue(key.Public(), stunnel.Leaf{Identity: stunnel.Identity{Role: "director", ID: "d"},
		IPs: []net.IP{net.ParseIP("127.0.0.1")}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(append(certPEM, ca.CertPEM...), keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	srv.StartTLS()
	defer srv.Close()

	roles := []engine.Role{engine.RoleAdmin, engine.RoleConstructor, engine.RoleProxy, engine.RoleAllocator}
	if _, err := IssueLocal(dir, srv.Listener.Addr().String(), "127.0.0.1:2191", "", roles, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(CRLFile(dir), crl, 0o644); err != nil {
		t.Fatal(err)
	}
	const every = time.Minute
	var ats []*AgentTLS
	for _, r := range roles {
		at, err := NewAgentTLS(dir, string(r), nil, quiet())
		if err != nil {
			t.Fatal(err)
		}
		ats = append(ats, at)
	}
	stale := func() {
		old := time.Now().Add(-time.Hour)
		if err := os.Chtimes(CRLFile(dir), old, old); err != nil {
			t.Fatal(err)
		}
	}
	// Every agent of the host at the same tick, the list on disk stale:
	// one fetches (under the lock), the others find it fresh.
	stale()
	var wg sync.WaitGroup
	for _, at := range ats {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := at.fetchCRLOnce(t.Context(), every); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := fetches.Load(); n != 1 {
		t.Fatalf("%d fetches by %d agents at one tick, want 1", n, len(ats))
	}
	// Next interval: stale again, fetched once more.
	stale()
	for _, at := range ats {
		if err := at.fetchCRLOnce(t.Context(), every); err != nil {
			t.Fatal(err)
		}
	}
	if n := fetches.Load(); n != 2 {
		t.Fatalf("%d fetches after two intervals, want 2", n)
	}
	// What was fetched is the list every agent loads.
	for _, at := range ats {
		if err := at.Loader.Reload(); err != nil {
			t.Fatalf("%s: reload with the fetched list: %v", at.Role, err)
		}
	}
}
