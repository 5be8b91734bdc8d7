package api

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"paddock/engine/service"
)

// headroomCollector exports the zone-loss headroom per zone at scrape
// time, from the service's cached report (at most a second old).
type headroomCollector struct {
	svc                                      *service.Service
	log                                      *slog.Logger
	survivable, shortfall, unplaceable, lost *prometheus.Desc
}

func newHeadroomCollector(svc *service.Service, log *slog.Logger) *headroomCollector {
	zone := []string{"zone"}
	return &headroomCollector{svc: svc, log: log,
		survivable: prometheus.NewDesc("paddock_zone_loss_survivable",
			"1 when every instance of the zone could be re-placed in the other zones if it were lost, else 0.", zone, nil),
		shortfall: prometheus.NewDesc("paddock_zone_loss_shortfall_mb",
			"Memory (MB) the other zones lack to take the zone's instances if it were lost.", zone, nil),
		unplaceable: prometheus.NewDesc("paddock_zone_loss_unplaceable_deployments",
			"Deployments with an instance that could not be re-placed if the zone were lost.", zone, nil),
		lost: prometheus.NewDesc("paddock_zone_loss_lost_ha_deployments",
			"Deployments that would keep serving on fewer zones than asked if the zone were lost.", zone, nil),
	}
}

func (c *headroomCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.survivable
	ch <- c.shortfall
	ch <- c.unplaceable
	ch <- c.lost
}

func (c *headroomCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rep, err := c.svc.Headroom(ctx)
	if err != nil {
		c.log.Debug("headroom metrics: no report", "err", err)
		return // no sample beats a wrong one
	}
	for _, z := range rep.Zones {
		ok := 0.0
		if z.Survivable {
			ok = 1
		}
		ch <- prometheus.MustNewConstMetric(c.survivable, prometheus.GaugeValue, ok, z.Zone)
		ch <- prometheus.MustNewConstMetric(c.shortfall, prometheus.GaugeValue, float64(z.ShortfallMB), z.Zone)
		ch <- prometheus.MustNewConstMetric(c.unplaceable, prometheus.GaugeValue, float64(len(z.Unplaceable)), z.Zone)
		ch <- prometheus.MustNewConstMetric(c.lost, prometheus.GaugeValue, float64(len(z.LostHA)), z.Zone)
	}
}
