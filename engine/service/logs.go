package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"paddock/engine"
)

// NodeLogs reaches an allocator's log endpoint through its node tunnel
// (agents/allocator.LogClient). The service decides who may read which
// instance's log; the allocator checks that the caller holds the
// platform's admin certificate.
type NodeLogs interface {
	Logs(ctx context.Context, tunnelAddr, instance string, o engine.LogOptions) (io.ReadCloser, error)
}

// WithNodeLogs lets the service read instances' logs (Logs).
func WithNodeLogs(n NodeLogs) Option { return func(s *Service) { s.nodeLogs = n } }

// logLookupTimeout bounds the ZooKeeper reads of a log request (the
// stream itself lasts as long as ctx).
const logLookupTimeout = 10 * time.Second

// Logs opens the container log of one instance of deployment dep: the
// last lines (o.Tail, engine.DefaultLogTail when 0), only those newer
// than o.Since, and new lines while o.Follow until ctx ends. instance is
// an instance id or a unique prefix of one; "" is the deployment's
// first Elasticsearch instance. The instances of a running plan count
// (the log of a node that never becomes healthy is the one wanted). The
// log comes from the instance's allocator, never from a Docker socket
// here; when the previous container was replaced, its kept tail comes
// first.
func (s *Service) Logs(ctx context.Context, dep, instance string, o engine.LogOptions) (io.ReadCloser, error) {
	if err := checkID(dep); err != nil {
		return nil, err
	}
	var fe []FieldError
	if o.Tail < 0 || o.Tail > 100000 {
		fe = append(fe, field("tail", "must be a number of lines from 1 to 100000, got %d", o.Tail))
	}
	if o.Since < 0 {
		fe = append(fe, field("since", "must be a positive duration such as 10m, got %s", o.Since))
	}
	if len(fe) > 0 {
		return nil, invalid(fe...)
	}
	lctx, cancel := context.WithTimeout(ctx, logLookupTimeout)
	defer cancel()
	d, err := s.GetDeployment(lctx, dep)
	if err != nil {
		return nil, err
	}
	ins := append([]engine.PlacedInstance(nil), d.Instances...)
	if d.PendingPlan != nil {
		ins = append(ins, d.PendingPlan.NewInstances...)
	}
	in, err := pickInstance(dep, ins, instance)
	if err != nil {
		return nil, err
	}
	if s.nodeLogs == nil {
		return nil, &Error{Kind: KindUnavailable, Code: "logs.unavailable",
			Message: "this API/console reaches no allocator log endpoint: it needs the admin role's certificate (`paddock up` issues it under <state-dir>/tls; a joined host gets it with `paddock api --join`)"}
	}
	var st engine.InstanceStatus
	if _, err := s.store.GetJSON(lctx, engine.StatusPath(in.Allocator, in.ID), &st); err != nil && !errors.Is(err, engine.ErrNotFound) {
		return nil, storeErr(err, "instance", in.ID)
	}
	tunnel := st.TunnelAddr
	if tunnel == "" {
		var rec engine.Allocator
		if _, err := s.store.GetJSON(lctx, engine.AllocatorPath(in.Allocator), &rec); err == nil {
			tunnel = rec.TunnelAddr
		}
	}
	rc, err := s.nodeLogs.Logs(ctx, tunnel, in.ID, o)
	if err != nil {
		return nil, &Error{Kind: KindUnavailable, Code: "logs.unreachable",
			Message: fmt.Sprintf("cannot read the log of instance %s on allocator %s: %v (is the allocator alive? `paddock allocator list`)", in.ID, in.Allocator, err), Err: err}
	}
	return rc, nil
}

// pickInstance finds instance (an id or a unique prefix) among ins; ""
// is the first Elasticsearch instance (by zone, then id).
func pickInstance(dep string, ins []engine.PlacedInstance, instance string) (engine.PlacedInstance, error) {
	sort.SliceStable(ins, func(i, j int) bool {
		if ins[i].Kind != ins[j].Kind {
			return ins[i].Kind == engine.KindElasticsearch
		}
		if ins[i].Zone != ins[j].Zone {
			return ins[i].Zone < ins[j].Zone
		}
		return ins[i].ID < ins[j].ID
	})
	if len(ins) == 0 {
		return engine.PlacedInstance{}, conflict("deployment.no_instances", "deployment %s has no instance yet: its logs appear once its plan places one", dep)
	}
	if instance == "" {
		return ins[0], nil
	}
	var found []engine.PlacedInstance
	for _, in := range ins {
		if in.ID == instance {
			return in, nil
		}
		if strings.HasPrefix(in.ID, instance) {
			found = append(found, in)
		}
	}
	ids := make([]string, len(ins))
	for i, in := range ins {
		ids[i] = in.ID + " (" + in.Kind + ", " + in.Zone + ")"
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return engine.PlacedInstance{}, &Error{Kind: KindNotFound, Code: "instance.not_found",
			Message: fmt.Sprintf("deployment %s has no instance %q: its instances are %s", dep, instance, strings.Join(ids, ", "))}
	}
	return engine.PlacedInstance{}, invalid(field("instance", "%q names %d instances of deployment %s: give more of the id (%s)", instance, len(found), dep, strings.Join(ids, ", ")))
}
