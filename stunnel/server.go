package stunnel

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Peer is an admitted client of a Server.
type Peer struct {
	Identity Identity
	// ServerName is the SNI the client sent; servers that front several
	// backends (an allocator in front of its nodes) choose the target
	// by it.
	ServerName string
	Cert       *x509.Certificate
	Remote     net.Addr
}

// TargetFunc opens the plain connection a tunnelled connection is
// forwarded to. It runs after the handshake, with the admitted peer.
type TargetFunc func(ctx context.Context, p Peer) (net.Conn, error)

// DialTarget forwards every connection to one fixed address.
func DialTarget(addr string) TargetFunc {
	return func(ctx context.Context, _ Peer) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
}

// ServerConfig configures the server end (TLS in, plain out).
type ServerConfig struct {
	Options
	// Target chooses and dials the plain backend per connection.
	Target TargetFunc
	// TargetDesc describes the target for the status endpoint.
	TargetDesc string
	// Admit, when set, runs in the handshake after the certificate is
	// verified and allowed, with the peer and the SNI it sent: an error
	// fails the handshake (reason not_allowed), so the client learns it
	// was refused before it sends a byte.
	Admit func(p Peer) error
	// AdmitName, when set, runs on the ClientHello with the SNI, before
	// any certificate is seen: an error fails the handshake there, so
	// the client's own handshake fails (with TLS 1.3 a refusal in Admit
	// reaches the client only at its first read).
	AdmitName func(serverName string) error
	Logger    *slog.Logger
}

// Server accepts mutual-TLS connections from admitted peers and forwards
// them to plain targets. Use Serve with a listener (embeddable) or
// ListenAndServe.
type Server struct {
	cfg   ServerConfig
	log   *slog.Logger
	m     *tunnelMetrics
	tlsc  configCache
	base  *tls.Config
	state tunnelState
}

// NewServer checks the configuration and builds a server.
func NewServer(cfg ServerConfig) (*Server, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if cfg.Target == nil {
		return nil, errors.New("tunnel server needs a target")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{cfg: cfg, log: cfg.Logger.With("tunnel", cfg.Name, "mode", "server")}
	s.m = cfg.Metrics.forTunnel(cfg.Name, cfg.Loader)
	s.tlsc.build = s.buildTLS
	s.base = &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			if s.cfg.AdmitName != nil {
				if err := s.cfg.AdmitName(hello.ServerName); err != nil {
					return nil, &PeerError{Reason: ReasonNotAllowed, Err: err}
				}
			}
			return s.tlsc.get(s.cfg.Loader.Current()), nil
		},
	}
	s.state.init("server", cfg.Name, cfg.TargetDesc, cfg.Allow, cfg.Loader)
	return s, nil
}

func (s *Server) buildTLS(m *Material) *tls.Config {
	return &tls.Config{
		MinVersion:       tls.VersionTLS12,
		Certificates:     []tls.Certificate{m.Cert},
		ClientAuth:       tls.RequireAnyClientCert,
		CurvePreferences: s.cfg.Curves,
		VerifyConnection: func(cs tls.ConnectionState) error {
			id, err := verifyPeer(s.cfg.Loader.Current(), cs.PeerCertificates, x509.ExtKeyUsageClientAuth, s.cfg.Allow)
			if err != nil || s.cfg.Admit == nil {
				return err
			}
			if err := s.cfg.Admit(Peer{Identity: id, ServerName: cs.ServerName, Cert: cs.PeerCertificates[0]}); err != nil {
				return &PeerError{Reason: ReasonNotAllowed, Peer: id, Err: err}
			}
			return nil
		},
	}
}

// TLSConfig is the server's TLS configuration (reloading, verifying).
// Embedders that terminate TLS themselves (an HTTPS server) use it and
// read the peer with PeerIdentity.
func (s *Server) TLSConfig() *tls.Config { return s.base }

// ListenAndServe listens on addr (TCP) and serves until ctx ends.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("tunnel %s: listen on %s: %w (is another process using the port? choose another with --listen)", s.cfg.Name, addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve accepts on ln until ctx ends, then drains: the listener closes,
// live connections get DrainTimeout to finish, then are closed. It
// returns nil after a drain, or the accept error.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	return serveLoop(ctx, ln, &s.state, s.log, s.cfg.DrainTimeout, func(ctx context.Context, c net.Conn, kill <-chan struct{}) {
		s.handle(ctx, c, kill)
	})
}

func (s *Server) handle(ctx context.Context, raw net.Conn, kill <-chan struct{}) {
	tc := tls.Server(raw, s.base)
	hctx, cancel := context.WithTimeout(ctx, s.cfg.HandshakeTimeout)
	err := tc.HandshakeContext(hctx)
	cancel()
	if err != nil {
		reason := Reason(err)
		s.m.hsFail.WithLabelValues(reason).Inc()
		s.state.failed(reason)
		s.log.Warn("handshake refused", "remote", raw.RemoteAddr().String(), "reason", reason, "err", err)
		raw.Close()
		return
	}
	cs := tc.ConnectionState()
	id, _ := IdentityOf(cs.PeerCertificates[0])
	peer := Peer{Identity: id, ServerName: cs.ServerName, Cert: cs.PeerCertificates[0], Remote: raw.RemoteAddr()}
	dctx, dcancel := context.WithTimeout(ctx, s.cfg.ConnectTimeout)
	target, err := s.cfg.Target(dctx, peer)
	dcancel()
	if err != nil {
		s.m.targetFail.Inc()
		s.log.Warn("target unreachable; closing the tunnelled connection", "peer", id.String(), "sni", cs.ServerName, "err", err)
		tc.Close()
		return
	}
	s.m.conns.Inc()
	s.m.active.Inc()
	defer s.m.active.Dec()
	s.log.Debug("connection admitted", "peer", id.String(), "remote", raw.RemoteAddr().String(), "tls", tls.VersionName(cs.Version))
	pipe(tc, target, s.cfg.IdleTimeout, s.m.bytesIn, s.m.bytesOut, kill)
}

// Status reports the server's state for the status endpoint.
func (s *Server) Status() TunnelStatus { return s.state.snapshot() }

// serveLoop is the accept/drain loop shared by both modes.
func serveLoop(ctx context.Context, ln net.Listener, st *tunnelState, log *slog.Logger, drain time.Duration,
	handle func(ctx context.Context, c net.Conn, kill <-chan struct{})) error {
	st.listening(ln.Addr().String())
	connCtx, cancelConns := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelConns()
	kill := make(chan struct{})
	var wg sync.WaitGroup
	var stopping atomic.Bool
	go func() {
		<-ctx.Done()
		stopping.Store(true)
		ln.Close()
	}()
	var acceptErr error
	for {
		c, err := ln.Accept()
		if err != nil {
			if stopping.Load() {
				break
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			acceptErr = fmt.Errorf("accept on %s: %w", ln.Addr(), err)
			break
		}
		wg.Add(1)
		st.open.Add(1)
		go func() {
			defer wg.Done()
			defer st.open.Add(-1)
			handle(connCtx, c, kill)
		}()
	}
	ln.Close()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	if n := st.open.Load(); n > 0 {
		log.Info("draining tunnel connections", "open", n, "timeout", drain)
	}
	select {
	case <-done:
	case <-time.After(drain):
		log.Warn("drain timeout: closing the remaining connections", "open", st.open.Load())
		cancelConns()
		close(kill)
		<-done
	}
	st.listening("")
	return acceptErr
}
