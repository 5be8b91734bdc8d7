package proxy

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	requests  *prometheus.CounterVec
	upstream  prometheus.Histogram
	retries   prometheus.Counter
	upErrors  *prometheus.CounterVec
	held      prometheus.Gauge
	routes    prometheus.Gauge
	tableVer  prometheus.Gauge
	zk        prometheus.Gauge
	down      *prometheus.CounterVec
	drained   prometheus.Counter
	cacheSave *prometheus.CounterVec
	handoffs  *prometheus.CounterVec
	// proxyProto counts PROXY protocol headers by result.
	proxyProto *prometheus.CounterVec
	// loopConns: client connections per event loop.
	loopConns *prometheus.GaugeVec

	mu       sync.Mutex
	perRoute map[string]*routeMetrics
}

// routeMetrics caches a deployment's counters by status code so the hot
// path skips the label hashing of CounterVec.
type routeMetrics struct {
	id    string
	vec   *prometheus.CounterVec
	mu    sync.RWMutex
	codes map[int]prometheus.Counter
}

func (rm *routeMetrics) inc(code int) {
	rm.mu.RLock()
	c, ok := rm.codes[code]
	rm.mu.RUnlock()
	if !ok {
		c = rm.vec.WithLabelValues(rm.id, strconv.Itoa(code))
		rm.mu.Lock()
		rm.codes[code] = c
		rm.mu.Unlock()
	}
	c.Inc()
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_proxy_requests_total",
			Help: "Client requests by deployment and response status."}, []string{"deployment", "code"}),
		upstream: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "paddock_proxy_upstream_seconds",
			Help:    "Time from sending a request to a backend to its response head.",
			Buckets: []float64{.0002, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{Name: "paddock_proxy_retries_total",
			Help: "Idempotent requests sent again on another backend after a connection failure."}),
		upErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_proxy_upstream_errors_total",
			Help: "Backend failures by kind (connect, timeout, protocol, stale)."}, []string{"kind"}),
		held: prometheus.NewGauge(prometheus.GaugeOpts{Name: "paddock_proxy_held_requests",
			Help: "Requests waiting on a paused route."}),
		routes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "paddock_proxy_routes",
			Help: "Deployments in the routing table."}),
		tableVer: prometheus.NewGauge(prometheus.GaugeOpts{Name: "paddock_proxy_table_version",
			Help: "Routing table version (increments with every change)."}),
		zk: prometheus.NewGauge(prometheus.GaugeOpts{Name: "paddock_proxy_zookeeper_connected",
			Help: "1 while the proxy holds a ZooKeeper session."}),
		down: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_proxy_backend_transitions_total",
			Help: "Passive health transitions of backends (down, up)."}, []string{"to"}),
		drained: prometheus.NewCounter(prometheus.CounterOpts{Name: "paddock_proxy_backends_drained_total",
			Help: "Backends no route names any more, drained and closed."}),
		cacheSave: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_proxy_disk_cache_saves_total",
			Help: "Writes of the routing table to disk by result."}, []string{"result"}),
		handoffs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_proxy_loop_handoffs_total",
			Help: "Client connections the event loops handed over to the goroutine-per-connection server, by reason (http/1.0, expect, chunked-body, paused, large-head)."}, []string{"reason"}),
		proxyProto: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_proxy_proxy_protocol_total",
			Help: "PROXY protocol v2 headers by result (ok; refused: missing or malformed; untrusted: from a peer outside --trusted-proxies)."}, []string{"result"}),
		loopConns: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "paddock_proxy_loop_connections",
			Help: "Client connections served by each event loop of the plain listener (new connections go to the loop serving the fewest)."}, []string{"loop"}),
		perRoute: map[string]*routeMetrics{},
	}
	reg.MustRegister(m.requests, m.upstream, m.retries, m.upErrors, m.held, m.routes, m.tableVer, m.zk, m.down, m.drained, m.cacheSave, m.handoffs, m.proxyProto, m.loopConns)
	return m
}

func (m *metrics) forRoute(id string) *routeMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	rm, ok := m.perRoute[id]
	if !ok {
		rm = &routeMetrics{id: id, vec: m.requests, codes: map[int]prometheus.Counter{}}
		m.perRoute[id] = rm
	}
	return rm
}

// forget drops the counters of a deployment gone from the table.
func (m *metrics) forget(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.perRoute, id)
	m.requests.DeletePartialMatch(prometheus.Labels{"deployment": id})
}
