package proxy

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"paddock/stunnel"
)

// publicCerts gives the HTTPS listener a certificate per host name,
// signed by the platform CA: one for each deployment host
// (<id>.<domain>, minted on its first handshake and renewed when a third
// of its life is left) and one for <domain> and *.<domain> for anything
// else. Exact names matter: OpenSSL (curl, Python) refuses a wildcard
// directly under a one-label domain such as "localhost", so a wildcard
// alone would not serve `curl --cacert ca.pem https://<id>.localhost:9243/`.
// Names are minted only for deployments in the routing table, so a
// client cannot make the proxy sign arbitrary names.
type publicCerts struct {
	ca     *stunnel.CA
	key    crypto.Signer
	ttl    time.Duration
	domain func() string
	known  func(id string) bool
	now    func() time.Time

	mu    sync.Mutex
	cache map[string]*tls.Certificate // host (or "*" for the domain's) → certificate
}

// publicCertTTL is how long a minted certificate lives.
const publicCertTTL = 7 * 24 * time.Hour

// maxPublicCerts bounds the cache (deployments deleted long ago drop out
// when it is full).
const maxPublicCerts = 50000

func newPublicCerts(ca *stunnel.CA, domain func() string, known func(id string) bool) (*publicCerts, error) {
	if ca == nil || ca.Key == nil {
		return nil, errors.New("public certificates need the platform CA with its key")
	}
	key, _, err := stunnel.GenerateKey()
	if err != nil {
		return nil, err
	}
	return &publicCerts{ca: ca, key: key, ttl: publicCertTTL, domain: domain, known: known, now: time.Now,
		cache: map[string]*tls.Certificate{}}, nil
}

// names returns the cache key and DNS names of the certificate for
// serverName.
func (pc *publicCerts) names(serverName string) (string, []string) {
	domain := pc.domain()
	host := strings.TrimSuffix(strings.ToLower(serverName), ".")
	if id, ok := strings.CutSuffix(host, "."+domain); ok && !strings.Contains(id, ".") && pc.known(id) {
		return host, []string{host}
	}
	return "*", []string{domain, "*." + domain}
}

// getCertificate is the listener's tls.Config.GetCertificate.
func (pc *publicCerts) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	key, names := pc.names(hello.ServerName)
	now := pc.now()
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if c := pc.cache[key]; c != nil && now.Before(renewAt(c.Leaf)) && names[0] == c.Leaf.DNSNames[0] {
		return c, nil
	}
	leaf, der, err := pc.ca.IssueServer(pc.key.Public(), names, pc.ttl)
	if err != nil {
		return nil, fmt.Errorf("mint a certificate for %v: %w", names, err)
	}
	c := &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: pc.key, Leaf: leaf}
	if len(pc.cache) >= maxPublicCerts {
		for k, old := range pc.cache {
			if !now.Before(renewAt(old.Leaf)) || k != "*" {
				delete(pc.cache, k)
				break
			}
		}
	}
	pc.cache[key] = c
	return c, nil
}

// renewAt is when a certificate has a third of its life left.
func renewAt(c *x509.Certificate) time.Time {
	return c.NotAfter.Add(-c.NotAfter.Sub(c.NotBefore) / 3)
}

// tlsConfig is the HTTPS listener's configuration.
func (pc *publicCerts) tlsConfig() *tls.Config {
	return &tls.Config{GetCertificate: pc.getCertificate, MinVersion: tls.VersionTLS12}
}
