package stunnel

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"
)

// ClientConfig configures the client end (plain in, TLS out).
type ClientConfig struct {
	Options
	// Remote is the tunnel server dialed (host:port).
	Remote string
	// ServerName is the SNI sent (a server fronting several backends
	// picks one by it). The server is verified by its certificate's
	// identity against Allow, not by host name.
	ServerName string
	Logger     *slog.Logger
}

// Client opens mutual-TLS connections to a tunnel server: as a local
// plain listener (Serve) or as a dialer for libraries (DialContext,
// ZooKeeperDialer).
type Client struct {
	cfg   ClientConfig
	log   *slog.Logger
	m     *tunnelMetrics
	tlsc  configCache
	state tunnelState
}

// NewClient checks the configuration and builds a client.
func NewClient(cfg ClientConfig) (*Client, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c := &Client{cfg: cfg, log: cfg.Logger.With("tunnel", cfg.Name, "mode", "client")}
	c.m = cfg.Metrics.forTunnel(cfg.Name, cfg.Loader)
	c.tlsc.build = c.buildTLS
	c.state.init("client", cfg.Name, cfg.Remote, cfg.Allow, cfg.Loader)
	return c, nil
}

func (c *Client) buildTLS(m *Material) *tls.Config {
	return &tls.Config{
		MinVersion:       tls.VersionTLS12,
		Certificates:     []tls.Certificate{m.Cert},
		CurvePreferences: c.cfg.Curves,
		// The chain is verified below against the CA, by identity rather
		// than host name (a tunnel address is often an IP).
		InsecureSkipVerify: true,
		ClientSessionCache: tls.NewLRUClientSessionCache(256),
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, err := verifyPeer(c.cfg.Loader.Current(), cs.PeerCertificates, x509.ExtKeyUsageServerAuth, c.cfg.Allow)
			return err
		},
	}
}

// TLSConfig returns the client TLS configuration of the current
// material with the given SNI (embedders such as an HTTP transport).
func (c *Client) TLSConfig(serverName string) *tls.Config {
	cfg := c.tlsc.get(c.cfg.Loader.Current())
	if serverName == "" {
		serverName = c.cfg.ServerName
	}
	if serverName == cfg.ServerName {
		return cfg
	}
	cfg = cfg.Clone()
	cfg.ServerName = serverName
	return cfg
}

// DialContext opens an mTLS connection to addr (Remote when empty) with
// the configured SNI.
func (c *Client) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return c.DialSNI(ctx, addr, c.cfg.ServerName)
}

// DialSNI opens an mTLS connection to addr (Remote when empty) sending
// serverName as SNI, and completes the handshake.
func (c *Client) DialSNI(ctx context.Context, addr, serverName string) (*tls.Conn, error) {
	if addr == "" {
		addr = c.cfg.Remote
	}
	dctx, cancel := context.WithTimeout(ctx, c.cfg.ConnectTimeout)
	defer cancel()
	var d net.Dialer
	raw, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		c.m.targetFail.Inc()
		return nil, fmt.Errorf("tunnel %s: connect to %s: %w (is the tunnel server running there?)", c.cfg.Name, addr, err)
	}
	tc := tls.Client(raw, c.TLSConfig(serverName))
	hctx, hcancel := context.WithTimeout(ctx, c.cfg.HandshakeTimeout)
	defer hcancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		raw.Close()
		reason := Reason(err)
		c.m.hsFail.WithLabelValues(reason).Inc()
		c.state.failed(reason)
		hint := "check that both ends share the CA and that this certificate's role is allowed there"
		if reason == ReasonNotAllowed || reason == ReasonUnknownAuthority {
			hint = "the server is not who this tunnel expects: check --connect and the allow-list"
		}
		return nil, fmt.Errorf("tunnel %s: TLS handshake with %s: %w (%s)", c.cfg.Name, addr, err, hint)
	}
	return tc, nil
}

// ZooKeeperDialer returns a dialer for go-zookeeper (engine.Options.Dialer):
// each ZooKeeper address in the connection string is a tunnel server.
func (c *Client) ZooKeeperDialer() func(network, address string, timeout time.Duration) (net.Conn, error) {
	return func(_, address string, timeout time.Duration) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		return c.DialSNI(ctx, address, c.cfg.ServerName)
	}
}

// ListenAndServe listens on addr (plain, keep it on loopback) and
// forwards every connection over mTLS to Remote until ctx ends.
func (c *Client) ListenAndServe(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("tunnel %s: listen on %s: %w (choose another with --listen)", c.cfg.Name, addr, err)
	}
	return c.Serve(ctx, ln)
}

// Serve accepts plain connections on ln and forwards them over mTLS to
// Remote until ctx ends, then drains like Server.Serve.
func (c *Client) Serve(ctx context.Context, ln net.Listener) error {
	if c.cfg.Remote == "" {
		return errors.New("tunnel client needs a remote (--connect host:port)")
	}
	return serveLoop(ctx, ln, &c.state, c.log, c.cfg.DrainTimeout, func(ctx context.Context, plain net.Conn, kill <-chan struct{}) {
		tc, err := c.DialSNI(ctx, "", "")
		if err != nil {
			c.log.Warn("cannot open the tunnel; closing the local connection", "err", err)
			plain.Close()
			return
		}
		c.m.conns.Inc()
		c.m.active.Inc()
		defer c.m.active.Dec()
		pipe(plain, tc, c.cfg.IdleTimeout, c.m.bytesIn, c.m.bytesOut, kill)
	})
}

// Status reports the client's state for the status endpoint.
func (c *Client) Status() TunnelStatus { return c.state.snapshot() }
