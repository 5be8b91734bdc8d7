package constructor

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	leader       prometheus.Gauge
	plans        *prometheus.CounterVec
	steps        *prometheus.CounterVec
	planSeconds  *prometheus.HistogramVec
	placements   prometheus.Counter
	replacements prometheus.Counter
	frozen       prometheus.Gauge
	lost         prometheus.Gauge
	routeWrites  prometheus.Counter
	running      prometheus.Gauge
	sweeps       prometheus.Counter
	held         prometheus.Counter
	blocked      *prometheus.GaugeVec
	// replication authority (replication.go)
	replWrites  *prometheus.CounterVec
	promotions  prometheus.Counter
	replRed     prometheus.Gauge
	replPushes  *prometheus.CounterVec
	replPollers prometheus.Gauge
	// recoveryFallbacks counts grow-and-shrink plans whose recovery
	// stalled and that moved the data by snapshot instead (growshrink.go).
	recoveryFallbacks prometheus.Counter
	snap              *snapMetrics
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		leader: prometheus.NewGauge(prometheus.GaugeOpts{Name: "paddock_constructor_leader", Help: "1 while this constructor leads."}),
		plans: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_constructor_plans_total",
			Help: "Plans finished, by action and result."}, []string{"action", "result"}),
		steps: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_constructor_plan_steps_total",
			Help: "Plan steps finished, by step and status."}, []string{"step", "status"}),
		planSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "paddock_constructor_plan_duration_seconds",
			Help: "Plan run time.", Buckets: prometheus.ExponentialBuckets(0.1, 2, 14)}, []string{"action"}),
		placements:   prometheus.NewCounter(prometheus.CounterOpts{Name: "paddock_constructor_placements_total", Help: "Instances placed."}),
		replacements: prometheus.NewCounter(prometheus.CounterOpts{Name: "paddock_constructor_replacements_total", Help: "Instances of lost allocators scheduled for replacement."}),
		frozen: prometheus.NewGauge(prometheus.GaugeOpts{Name: "paddock_constructor_rescheduling_frozen",
			Help: "1 while rescheduling is frozen because a whole zone or most allocators look lost."}),
		lost:        prometheus.NewGauge(prometheus.GaugeOpts{Name: "paddock_constructor_lost_allocators", Help: "Allocators whose alive node is missing."}),
		routeWrites: prometheus.NewCounter(prometheus.CounterOpts{Name: "paddock_constructor_route_writes_total", Help: "Route writes."}),
		running:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "paddock_constructor_plans_running", Help: "Plans being executed."}),
		sweeps: prometheus.NewCounter(prometheus.CounterOpts{Name: "paddock_constructor_sweeps_total",
			Help: "Periodic sweeps of the leader (platform config, routes, rescheduling), one per tick."}),
		held: prometheus.NewCounter(prometheus.CounterOpts{Name: "paddock_constructor_rescheduling_held_total",
			Help: "Sweeps that found allocators lost past the grace period and held them because rescheduling is frozen."}),
		blocked: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "paddock_plan_step_blocked",
			Help: "Plan steps running past their deadline now, by step (the plan's activity says what each waits for)."}, []string{"step"}),
	}
	m.replWrites = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_constructor_replication_writes_total",
		Help: "Writes of deployments' replication routing, by cause (plan, event, failover, reconcile)."}, []string{"cause"})
	m.promotions = prometheus.NewCounter(prometheus.CounterOpts{Name: "paddock_constructor_promotions_total",
		Help: "Replicas promoted to primary after their primary was lost."})
	m.replRed = prometheus.NewGauge(prometheus.GaugeOpts{Name: "paddock_constructor_deployments_red",
		Help: "Deployments whose primary is lost with no in-sync copy to promote (red)."})
	m.replPushes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_constructor_replication_pushes_total",
		Help: "Pushes of routing to nodes, by result (applied, ignored, error)."}, []string{"result"})
	m.replPollers = prometheus.NewGauge(prometheus.GaugeOpts{Name: "paddock_constructor_replication_polls",
		Help: "Event long-polls open on deployments' primaries."})
	m.recoveryFallbacks = prometheus.NewCounter(prometheus.CounterOpts{Name: "paddock_constructor_recovery_fallbacks_total",
		Help: "Grow-and-shrink plans whose recovery of new copies stalled and that moved the data by snapshot instead."})
	reg.MustRegister(m.replWrites, m.promotions, m.replRed, m.replPushes, m.replPollers, m.recoveryFallbacks)
	reg.MustRegister(m.blocked, m.leader, m.plans, m.steps, m.planSeconds, m.placements, m.replacements, m.frozen, m.lost, m.routeWrites, m.running,
		m.sweeps, m.held)
	m.snap = newSnapMetrics(reg)
	return m
}
