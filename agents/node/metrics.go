package node

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MetricsPath serves the node's own metrics in Prometheus' text format.
const MetricsPath = "/_paddock/metrics"

// newMetricsHandler serves the node's registry: the doc-values cache of
// its indices' searches (dsl.DocValues, bounded by one budget per node).
func (s *Server) newMetricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	dv := s.dv
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "paddock_node_docvalues_bytes",
			Help: "Memory the decoded doc-values columns of searches hold (Elasticsearch's fielddata.memory_size_in_bytes)."},
			func() float64 { return float64(dv.Used()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "paddock_node_docvalues_budget_bytes",
			Help: "The node's bound on paddock_node_docvalues_bytes; past it, searches read doc values through bleve."},
			func() float64 { return float64(dv.Max()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "paddock_node_docvalues_evictions_total",
			Help: "Doc-values columns built and not kept because the budget was full (Elasticsearch's fielddata.evictions)."},
			func() float64 { return float64(dv.Refused()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "paddock_node_docvalues_dropped_total",
			Help: "Doc-values columns let go because their segment was merged away or their index closed."},
			func() float64 { return float64(dv.Dropped()) }),
	)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// metrics: GET /_paddock/metrics.
func (s *Server) metrics(w http.ResponseWriter, r *http.Request, _ params) error {
	s.metricsHandler.ServeHTTP(w, r)
	return nil
}
