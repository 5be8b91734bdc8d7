package service

import (
	"log/slog"
	"runtime"
	"time"

	"paddock/engine"
)

// Service holds what every action needs: the store (admin role), a
// clock and a logger. It is safe for concurrent use.
type Service struct {
	store *engine.Store
	log   *slog.Logger
	now   func() time.Time
	users userCache
	cache *Cache // nil: every read goes to ZooKeeper
	// nodeLogs reaches the allocators' log endpoints (nil: Logs is
	// unavailable).
	nodeLogs NodeLogs
	// certDir holds this host's role certificates (Doctor).
	certDir string
	// headroom caches the last zone-loss report (Headroom).
	headroom headroomCache
	// hashSlots bounds the password hashes (bcrypt, tens of ms of CPU
	// each) computed at once to half the CPUs (at least one): a burst
	// of creates leaves the other half to reads and to the rest of the
	// process instead of taking every core.
	hashSlots chan struct{}
}

// Option configures a Service.
type Option func(*Service)

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// WithClock sets the clock (tests).
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// New returns the service over a store connected as the admin role.
func New(store *engine.Store, opts ...Option) *Service {
	s := &Service{store: store, log: slog.Default(), now: func() time.Time { return time.Now().UTC() },
		hashSlots: make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/2))}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Store is the underlying store.
func (s *Service) Store() *engine.Store { return s.store }

// Actor names who asks for an action (recorded in plans and maintenance
// flags): an API key name, a user, "console".
type Actor string
