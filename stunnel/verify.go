package stunnel

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"
)

// Handshake failure reasons (the reason label of
// paddock_tunnel_handshake_failures_total).
const (
	ReasonNoCertificate    = "no_certificate"
	ReasonExpired          = "expired"
	ReasonUnknownAuthority = "unknown_authority"
	ReasonRevoked          = "revoked"
	ReasonNotAllowed       = "not_allowed"
	ReasonNoIdentity       = "no_identity"
	ReasonBadCertificate   = "bad_certificate"
	ReasonRefusedByPeer    = "refused_by_peer"
	ReasonTimeout          = "timeout"
	ReasonProtocol         = "protocol"
)

// PeerError is a refused peer certificate, with the reason.
type PeerError struct {
	Reason string
	Peer   Identity
	Err    error
}

func (e *PeerError) Error() string {
	switch e.Reason {
	case ReasonNotAllowed:
		return fmt.Sprintf("peer %s is not allowed here: %v", e.Peer, e.Err)
	}
	return fmt.Sprintf("peer certificate refused (%s): %v", e.Reason, e.Err)
}

func (e *PeerError) Unwrap() error { return e.Err }

// verifyPeer checks a peer's chain against the material's roots, its
// revocation and the allow-list, and returns its identity.
func verifyPeer(m *Material, chain []*x509.Certificate, usage x509.ExtKeyUsage, allow Allow) (Identity, error) {
	if len(chain) == 0 {
		return Identity{}, &PeerError{Reason: ReasonNoCertificate, Err: errors.New("the peer presented no certificate: mutual TLS is required")}
	}
	leaf := chain[0]
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: m.Roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		var inv x509.CertificateInvalidError
		var ua x509.UnknownAuthorityError
		switch {
		case errors.As(err, &inv) && inv.Reason == x509.Expired:
			return Identity{}, &PeerError{Reason: ReasonExpired, Err: err}
		case errors.As(err, &ua):
			return Identity{}, &PeerError{Reason: ReasonUnknownAuthority, Err: err}
		}
		return Identity{}, &PeerError{Reason: ReasonBadCertificate, Err: err}
	}
	for _, c := range chain {
		if m.Revoked[c.SerialNumber.String()] {
			return Identity{}, &PeerError{Reason: ReasonRevoked, Err: fmt.Errorf("certificate serial %s is revoked", c.SerialNumber)}
		}
	}
	id, err := IdentityOf(leaf)
	if err != nil {
		return Identity{}, &PeerError{Reason: ReasonNoIdentity, Err: err}
	}
	if !allow.Admits(id) {
		return id, &PeerError{Reason: ReasonNotAllowed, Peer: id, Err: fmt.Errorf("allowed: %s", allow)}
	}
	return id, nil
}

// Reason classifies a handshake error for metrics and logs.
func Reason(err error) string {
	var pe *PeerError
	var ne net.Error
	var ae tls.AlertError
	switch {
	case errors.As(err, &pe):
		return pe.Reason
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return ReasonTimeout
	case errors.As(err, &ae), strings.Contains(err.Error(), "remote error"):
		return ReasonRefusedByPeer
	case strings.Contains(err.Error(), "didn't provide a certificate"):
		return ReasonNoCertificate
	case errors.Is(err, io.EOF):
		return ReasonProtocol
	}
	return ReasonProtocol
}

// Options are what both ends share.
type Options struct {
	// Name labels metrics and logs (e.g. "zookeeper", "nodes").
	Name string
	// Loader provides the certificate, CA and CRL (reloadable).
	Loader *Loader
	// Allow lists the peers admitted (by their certificate identity).
	Allow Allow
	// HandshakeTimeout bounds the TLS handshake (default 10s).
	HandshakeTimeout time.Duration
	// ConnectTimeout bounds dialing the other side (default 10s).
	ConnectTimeout time.Duration
	// IdleTimeout closes a connection with no traffic either way for
	// that long (0: never).
	IdleTimeout time.Duration
	// DrainTimeout is how long live connections may finish after the
	// context ends before they are closed (default 30s).
	DrainTimeout time.Duration
	// Curves overrides the key exchange preferences (default: Go's).
	Curves []tls.CurveID
	// Metrics (nil: unregistered metrics).
	Metrics *Metrics
}

func (o *Options) defaults() error {
	if o.Loader == nil || o.Loader.Current() == nil {
		return errors.New("tunnel needs a certificate, key and CA (Loader)")
	}
	if o.Allow.Empty() {
		return errors.New("tunnel has an empty allow-list and would refuse everyone: say which roles or ids may connect")
	}
	if o.Name == "" {
		o.Name = "tunnel"
	}
	if o.HandshakeTimeout == 0 {
		o.HandshakeTimeout = 10 * time.Second
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	if o.DrainTimeout == 0 {
		o.DrainTimeout = 30 * time.Second
	}
	return nil
}

// configCache builds one tls.Config per material generation.
type configCache struct {
	mu    sync.Mutex
	gen   int64
	cfg   *tls.Config
	build func(*Material) *tls.Config
}

func (c *configCache) get(m *Material) *tls.Config {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cfg == nil || c.gen != m.Generation {
		c.cfg, c.gen = c.build(m), m.Generation
	}
	return c.cfg
}
