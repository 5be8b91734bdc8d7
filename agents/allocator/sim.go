package allocator

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"paddock/engine"
)

// SimAddress is the address sim instances report: TEST-NET-1, which
// routes nowhere. Sim is a scale-test mode for the control plane (100
// allocators × thousands of instances on one machine), not a workload.
const SimAddress = "192.0.2.1:9200"

// Sim is the in-memory runtime: no containers, every instance runs and
// is healthy as soon as it is created.
type Sim struct {
	host HostInfo

	mu   sync.Mutex
	ws   map[string]Workload // by id
	logs map[string][]string // by workload id: what the runtime did
	seq  int
	subs []chan struct{}
}

// NewSim returns a sim runtime advertising host.
func NewSim(host HostInfo) *Sim {
	if host.CPUs == 0 {
		host.CPUs = 8
	}
	if host.MemoryMB == 0 {
		host.MemoryMB = 64 << 10
	}
	return &Sim{host: host, ws: map[string]Workload{}, logs: map[string][]string{}}
}

// Name is "sim".
func (s *Sim) Name() string { return "sim" }

// Host is the advertised host.
func (s *Sim) Host(context.Context) (HostInfo, error) { return s.host, nil }

// Ping always succeeds.
func (s *Sim) Ping(context.Context) error { return nil }

// EnsureImage accepts every version.
func (s *Sim) EnsureImage(context.Context, string) error { return nil }

// List returns the simulated workloads.
func (s *Sim) List(context.Context) ([]Workload, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Workload, 0, len(s.ws))
	for _, w := range s.ws {
		out = append(out, w)
	}
	return out, nil
}

// Create "runs" an instance at once.
func (s *Sim) Create(_ context.Context, spec Spec) (Workload, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	in := spec.Instance
	w := Workload{ID: fmt.Sprintf("sim-%d", s.seq), Name: "sim-" + in.ID, Instance: in.ID, Deployment: in.DeploymentID,
		Kind: in.Kind, Version: in.Version, SizeMB: in.SizeMB, Generation: in.Generation, State: "running", Running: true,
		StartedAt: time.Now().UTC(), HostPort: 9200, Address: SimAddress, Health: "healthy",
		CPUShares: spec.Resources.CPUShares, NanoCPUs: spec.Resources.NanoCPUs}
	s.ws[w.ID] = w
	s.logf(w.ID, "sim node %s (%s %s, %d MB) created and started", in.ID, in.Kind, in.Version, in.SizeMB)
	return w, nil
}

// logf records a line of a workload's log (with s.mu held).
func (s *Sim) logf(id, format string, args ...any) {
	s.logs[id] = append(s.logs[id], time.Now().UTC().Format(time.RFC3339Nano)+" "+fmt.Sprintf(format, args...)+"\n")
}

// Logs returns the lines the sim recorded for the workload (no follow:
// the stream ends with what is there).
func (s *Sim) Logs(_ context.Context, w Workload, o engine.LogOptions) (io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	lines, ok := s.logs[w.ID]
	if !ok {
		return nil, fmt.Errorf("sim workload %s not found", w.ID)
	}
	n := o.Tail
	if n <= 0 {
		n = engine.DefaultLogTail
	}
	lines = lines[max(0, len(lines)-n):]
	return io.NopCloser(strings.NewReader(strings.Join(lines, ""))), nil
}

// Start marks a workload running.
func (s *Sim) Start(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.ws[id]
	if !ok {
		return fmt.Errorf("sim workload %s not found", id)
	}
	w.Running, w.State, w.StartedAt = true, "running", time.Now().UTC()
	s.ws[id] = w
	s.logf(id, "sim node %s started", w.Instance)
	return nil
}

// Restart is Start.
func (s *Sim) Restart(ctx context.Context, id string, _ time.Duration) error { return s.Start(ctx, id) }

// Remove forgets a workload.
func (s *Sim) Remove(_ context.Context, w Workload, _ time.Duration) error {
	s.mu.Lock()
	delete(s.ws, w.ID)
	delete(s.logs, w.ID)
	s.mu.Unlock()
	return nil
}

// Update records the new CPU settings.
func (s *Sim) Update(_ context.Context, id string, r Resources) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.ws[id]
	if !ok {
		return fmt.Errorf("sim workload %s not found", id)
	}
	w.CPUShares, w.NanoCPUs = r.CPUShares, r.NanoCPUs
	s.ws[id] = w
	return nil
}

// Probe always succeeds for running workloads.
func (s *Sim) Probe(_ context.Context, w Workload) error {
	if !w.Running {
		return fmt.Errorf("not running")
	}
	return nil
}

// Kill stops a workload as if it had crashed (tests of the sim mode).
func (s *Sim) Kill(iid string) {
	s.mu.Lock()
	for id, w := range s.ws {
		if w.Instance == iid {
			w.Running, w.State, w.ExitCode, w.FinishedAt = false, "exited", 137, time.Now().UTC()
			s.ws[id] = w
			s.logf(id, "sim node %s killed (exit code 137)", iid)
		}
	}
	subs := append([]chan struct{}(nil), s.subs...)
	s.mu.Unlock()
	for _, ch := range subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Events signals after Kill.
func (s *Sim) Events(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	s.subs = append(s.subs, ch)
	s.mu.Unlock()
	return ch
}

// Volumes: sim keeps no data.
func (s *Sim) Volumes(context.Context) (map[string]string, error) { return nil, nil }

// RemoveVolume does nothing.
func (s *Sim) RemoveVolume(context.Context, string) error { return nil }

// Close does nothing.
func (s *Sim) Close() error { return nil }
