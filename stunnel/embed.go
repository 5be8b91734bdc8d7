package stunnel

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"strings"
)

// SNI routing: one tunnel server in front of several backends (an
// allocator's node containers behind :9400) picks the backend by the
// server name the client sends. Clients send <backend>.node.paddock: a
// host name, so Go and OpenSSL send it even when the tunnel address is
// an IP (SNI is never sent for IP literals).
const sniSuffix = ".node.paddock"

// BackendSNI is the server name a client sends to reach backend (an
// instance id) through a tunnel server that routes by SNI.
func BackendSNI(backend string) string { return backend + sniSuffix }

// BackendFromSNI is the backend named by a server name (BackendSNI).
func BackendFromSNI(serverName string) (string, bool) {
	b, ok := strings.CutSuffix(serverName, sniSuffix)
	if !ok || b == "" {
		return "", false
	}
	return b, true
}

// Peer traffic (node to node through two allocators): the calling
// allocator names the target backend and the scope it vouches the
// caller belongs to (the caller's deployment), as
// <backend>.<scope>.peer.paddock, so the receiving tunnel can refuse a
// target outside that scope.
const peerSNISuffix = ".peer.paddock"

// PeerSNI is the server name an allocator sends to reach backend on
// behalf of a caller of scope (PeerFromSNI reads it back).
func PeerSNI(backend, scope string) string { return backend + "." + scope + peerSNISuffix }

// PeerFromSNI splits a PeerSNI server name; ok is false for any other.
func PeerFromSNI(serverName string) (backend, scope string, ok bool) {
	rest, ok := strings.CutSuffix(serverName, peerSNISuffix)
	if !ok {
		return "", "", false
	}
	backend, scope, ok = strings.Cut(rest, ".")
	if !ok || backend == "" || scope == "" || strings.Contains(scope, ".") {
		return "", "", false
	}
	return backend, scope, true
}

// SNIRouter is a TargetFunc choosing the plain backend by the SNI the
// peer sent: lookup maps a backend name (instance id) to its plain
// address (host loopback or container network), false when unknown.
func SNIRouter(lookup func(backend string) (addr string, ok bool)) TargetFunc {
	return func(ctx context.Context, p Peer) (net.Conn, error) {
		name, ok := BackendFromSNI(p.ServerName)
		if !ok {
			return nil, fmt.Errorf("client %s sent server name %q: want <instance>%s", p.Identity, p.ServerName, sniSuffix)
		}
		addr, ok := lookup(name)
		if !ok {
			return nil, fmt.Errorf("no backend %q here", name)
		}
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
}

// ReloadingTLSConfig is a client tls.Config for long-lived users (an
// http.Transport's TLSClientConfig): every handshake presents the
// current certificate and verifies the server against the current CA,
// revocation list and Allow, so reloads apply without rebuilding the
// transport. Set ServerName on a Clone to route by SNI (BackendSNI).
func (c *Client) ReloadingTLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		CurvePreferences:   c.cfg.Curves,
		InsecureSkipVerify: true, // verified in VerifyConnection, by identity
		ClientSessionCache: &genSessionCache{lru: tls.NewLRUClientSessionCache(1024), l: c.cfg.Loader},
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			m := c.cfg.Loader.Current()
			return &m.Cert, nil
		},
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, err := verifyPeer(c.cfg.Loader.Current(), cs.PeerCertificates, x509.ExtKeyUsageServerAuth, c.cfg.Allow)
			if err != nil {
				c.m.hsFail.WithLabelValues(Reason(err)).Inc()
				c.state.failed(Reason(err))
			}
			return err
		},
	}
}

// genSessionCache scopes resumable sessions to the material generation:
// a session resumed after a reload would carry the old certificate, so
// sessions of older generations are never offered.
type genSessionCache struct {
	lru tls.ClientSessionCache
	l   *Loader
}

func (g *genSessionCache) key(k string) string {
	return fmt.Sprintf("%d|%s", g.l.Current().Generation, k)
}

func (g *genSessionCache) Get(k string) (*tls.ClientSessionState, bool) { return g.lru.Get(g.key(k)) }

func (g *genSessionCache) Put(k string, cs *tls.ClientSessionState) { g.lru.Put(g.key(k), cs) }
