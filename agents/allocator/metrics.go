package allocator

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	instances     *prometheus.GaugeVec
	capacity      prometheus.Gauge
	used          prometheus.Gauge
	restarts      *prometheus.CounterVec
	actions       *prometheus.CounterVec
	actionErrors  *prometheus.CounterVec
	passes        prometheus.Counter
	quickPasses   prometheus.Counter
	passSeconds   prometheus.Histogram
	readySeconds  prometheus.Histogram
	probeFailures prometheus.Counter
	statusWrites  prometheus.Counter
	statusErrors  prometheus.Counter
	runtimeUp     prometheus.Gauge
	zkConnected   prometheus.Gauge
	volumesGC     prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		instances: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "paddock_allocator_instances",
			Help: "Instances by reported state."}, []string{"state"}),
		capacity: prometheus.NewGauge(prometheus.GaugeOpts{Name: "paddock_allocator_capacity_mb", Help: "Memory offered (MB)."}),
		used:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "paddock_allocator_used_mb", Help: "Memory of admitted instances (MB)."}),
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_allocator_restarts_total",
			Help: "Node restarts by cause (exited, oom, unhealthy, start_timeout)."}, []string{"cause"}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_allocator_actions_total",
			Help: "Runtime actions (create, start, restart, recreate, remove)."}, []string{"action"}),
		actionErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_allocator_action_errors_total",
			Help: "Failed runtime actions."}, []string{"action"}),
		passes: prometheus.NewCounter(prometheus.CounterOpts{Name: "paddock_allocator_reconcile_passes_total", Help: "Reconcile passes."}),
		quickPasses: prometheus.NewCounter(prometheus.CounterOpts{Name: "paddock_allocator_reconcile_quick_passes_total",
			Help: "Reconcile passes that looked at the changed and unsettled instances only (of the passes)."}),
		passSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "paddock_allocator_reconcile_seconds",
			Help: "Duration of reconcile passes.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		readySeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "paddock_allocator_instance_ready_seconds",
			Help: "Time from an instance first seen to healthy.", Buckets: prometheus.ExponentialBuckets(0.05, 2, 12)}),
		probeFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "paddock_allocator_probe_failures_total", Help: "Failed health probes."}),
		statusWrites:  prometheus.NewCounter(prometheus.CounterOpts{Name: "paddock_allocator_status_writes_total", Help: "Status znode writes."}),
		statusErrors:  prometheus.NewCounter(prometheus.CounterOpts{Name: "paddock_allocator_status_write_errors_total", Help: "Failed status znode writes."}),
		runtimeUp:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "paddock_allocator_runtime_up", Help: "1 when the container runtime answers."}),
		zkConnected:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "paddock_allocator_zookeeper_connected", Help: "1 while a ZooKeeper session is held."}),
		volumesGC:     prometheus.NewCounter(prometheus.CounterOpts{Name: "paddock_allocator_volumes_removed_total", Help: "Data volumes removed after their grace period."}),
	}
	reg.MustRegister(m.instances, m.capacity, m.used, m.restarts, m.actions, m.actionErrors, m.passes, m.quickPasses, m.passSeconds,
		m.readySeconds, m.probeFailures, m.statusWrites, m.statusErrors, m.runtimeUp, m.zkConnected, m.volumesGC)
	return m
}
