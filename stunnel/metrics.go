package stunnel

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the tunnel metrics, labelled by tunnel name. One Metrics
// serves every tunnel of a registry.
type Metrics struct {
	Connections       *prometheus.CounterVec
	Active            *prometheus.GaugeVec
	Bytes             *prometheus.CounterVec
	HandshakeFailures *prometheus.CounterVec
	TargetFailures    *prometheus.CounterVec
	Reloads           *prometheus.CounterVec
	CertNotAfter      *prometheus.GaugeVec
}

// NewMetrics registers the tunnel metrics on reg (nil: unregistered).
// Registering twice on one registry returns the collectors already there.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Connections: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_tunnel_connections_total",
			Help: "Connections accepted by a tunnel (admitted past the TLS handshake and allow-list)."}, []string{"tunnel"}),
		Active: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "paddock_tunnel_active_connections",
			Help: "Connections being forwarded now."}, []string{"tunnel"}),
		Bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_tunnel_bytes_total",
			Help: "Bytes forwarded; direction in = from the accepting side to the target, out = back."}, []string{"tunnel", "direction"}),
		HandshakeFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_tunnel_handshake_failures_total",
			Help: "TLS handshakes that failed, by reason (no_certificate, expired, unknown_authority, revoked, not_allowed, no_identity, bad_certificate, timeout, protocol)."}, []string{"tunnel", "reason"}),
		TargetFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_tunnel_target_failures_total",
			Help: "Connections dropped because the target could not be reached."}, []string{"tunnel"}),
		Reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_tunnel_cert_reloads_total",
			Help: "Certificate reloads by result (ok, error)."}, []string{"tunnel", "result"}),
		CertNotAfter: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "paddock_tunnel_cert_not_after_timestamp_seconds",
			Help: "Expiry of the certificate in use (Unix seconds)."}, []string{"tunnel"}),
	}
	if reg == nil {
		return m
	}
	reuse := func(c prometheus.Collector) prometheus.Collector {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return are.ExistingCollector
			}
			panic(err)
		}
		return c
	}
	m.Connections = reuse(m.Connections).(*prometheus.CounterVec)
	m.Active = reuse(m.Active).(*prometheus.GaugeVec)
	m.Bytes = reuse(m.Bytes).(*prometheus.CounterVec)
	m.HandshakeFailures = reuse(m.HandshakeFailures).(*prometheus.CounterVec)
	m.TargetFailures = reuse(m.TargetFailures).(*prometheus.CounterVec)
	m.Reloads = reuse(m.Reloads).(*prometheus.CounterVec)
	m.CertNotAfter = reuse(m.CertNotAfter).(*prometheus.GaugeVec)
	return m
}

// tunnelMetrics are one tunnel's curried metrics.
type tunnelMetrics struct {
	conns, bytesIn, bytesOut, targetFail prometheus.Counter
	active                               prometheus.Gauge
	hsFail                               *prometheus.CounterVec
	reloadOK, reloadErr                  prometheus.Counter
	notAfter                             prometheus.Gauge
}

func (m *Metrics) forTunnel(name string, l *Loader) *tunnelMetrics {
	if m == nil {
		m = NewMetrics(nil)
	}
	tm := &tunnelMetrics{
		conns:      m.Connections.WithLabelValues(name),
		active:     m.Active.WithLabelValues(name),
		bytesIn:    m.Bytes.WithLabelValues(name, "in"),
		bytesOut:   m.Bytes.WithLabelValues(name, "out"),
		targetFail: m.TargetFailures.WithLabelValues(name),
		hsFail:     m.HandshakeFailures.MustCurryWith(prometheus.Labels{"tunnel": name}),
		reloadOK:   m.Reloads.WithLabelValues(name, "ok"),
		reloadErr:  m.Reloads.WithLabelValues(name, "error"),
		notAfter:   m.CertNotAfter.WithLabelValues(name),
	}
	if cur := l.Current(); cur != nil {
		tm.notAfter.Set(float64(cur.Leaf.NotAfter.Unix()))
	}
	l.OnLoad(func(mat *Material, err error) {
		if err != nil {
			tm.reloadErr.Inc()
			return
		}
		tm.reloadOK.Inc()
		tm.notAfter.Set(float64(mat.Leaf.NotAfter.Unix()))
	})
	return tm
}
