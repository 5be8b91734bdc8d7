package constructor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/prometheus/client_golang/prometheus"

	"paddock/agents/agentkit"
	"paddock/stunnel"
)

// Run takes part in the constructor election and, while leading, runs
// plans, writes routes and reschedules lost allocators. It returns when
// ctx ends.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.defaults(); err != nil {
		return err
	}
	log := cfg.Logger.With("agent", "constructor", "id", cfg.ID)
	reg := agentkit.NewRegistry()
	st := agentkit.NewStatus()
	m := newMetrics(reg)
	if cfg.NodeLoader != nil {
		if err := cfg.tunnelNodes(reg, log); err != nil {
			return err
		}
	}
	if n, ok := cfg.Nodes.(*HTTPNodes); ok && n.Credentials == nil {
		n.Credentials = StoreCredentials(cfg.Store)
	}
	addr, err := agentkit.Serve(ctx, cfg.MetricsAddr, reg, st, log, nil)
	if err != nil {
		return err
	}
	if cfg.Ready != nil {
		cfg.Ready(addr)
	}
	st.SetReady(true)
	st.Set("leader", "")
	s := cfg.Store
	el := &election{s: s, id: cfg.ID, log: log}
	defer el.resign()
	sess, unsub := s.Subscribe()
	defer unsub()

	var (
		leaderCancel context.CancelFunc
		leaderDone   chan struct{}
		leaderSess   int64
	)
	stepDown := func(why string) {
		if leaderCancel == nil {
			return
		}
		leaderCancel()
		<-leaderDone
		leaderCancel, leaderDone = nil, nil
		m.leader.Set(0)
		log.Warn("constructor stepped down", "why", why)
	}
	defer stepDown("shutting down")
	retry := time.NewTimer(0)
	defer retry.Stop()
	// Election failures (ZooKeeper hiccups) are retried with backoff.
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval, bo.MaxInterval = 250*time.Millisecond, 10*time.Second
	lastFollow := ""
	for {
		select {
		case <-ctx.Done():
			return nil
		default:
		}
		var watch <-chan struct{}
		if !s.Connected() {
			stepDown("ZooKeeper connection lost: the session may expire and another constructor take over")
			st.Set("zookeeper", "disconnected")
		} else if leaderCancel != nil && s.SessionID() != leaderSess {
			stepDown("ZooKeeper session changed")
		} else {
			st.Set("zookeeper", "")
			if err := el.ensureCandidate(ctx); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				log.Warn("constructor election", "err", err)
				stepDown("election failed")
				retry.Reset(bo.NextBackOff())
			} else {
				lead, who, ch, err := el.leading(ctx)
				switch {
				case err != nil:
					if ctx.Err() != nil {
						return nil
					}
					log.Warn("constructor election", "err", err)
					retry.Reset(bo.NextBackOff())
				case lead && leaderCancel == nil:
					bo.Reset()
					lctx, cancel := context.WithCancel(ctx)
					leaderCancel, leaderDone, leaderSess = cancel, make(chan struct{}), s.SessionID()
					l := newLeader(cfg, m, st, log, el.node)
					done := leaderDone
					go func() {
						defer close(done)
						if err := l.run(lctx); err != nil && !errors.Is(err, context.Canceled) {
							log.Error("constructor leader stopped", "err", err)
						}
					}()
					m.leader.Set(1)
					st.Set("leader", "")
					log.Info("constructor is the leader")
				case !lead:
					stepDown("another constructor leads")
					if who != lastFollow {
						log.Info("constructor follows", "leader", who)
						lastFollow = who
					}
				}
				if ch != nil {
					w := make(chan struct{})
					go func() {
						select {
						case <-ch:
						case <-ctx.Done():
						}
						close(w)
					}()
					watch = w
				}
			}
		}
		var done <-chan struct{}
		if leaderDone != nil {
			done = leaderDone
		}
		select {
		case <-ctx.Done():
			return nil
		case <-sess:
		case <-watch:
		case <-retry.C:
		case <-done:
			// The leader loop ended on its own (an error): start over.
			leaderCancel()
			leaderCancel, leaderDone = nil, nil
			m.leader.Set(0)
			retry.Reset(bo.NextBackOff())
		case <-time.After(30 * time.Second): // safety re-check; watches drive the rest
		}
	}
}

// tunnelNodes gives the HTTP NodeAPI the mTLS client of the allocators'
// node tunnels, built from NodeLoader.
func (c *Config) tunnelNodes(reg prometheus.Registerer, log *slog.Logger) error {
	cl, err := stunnel.NewClient(stunnel.ClientConfig{Options: stunnel.Options{Name: "nodes", Loader: c.NodeLoader,
		Allow: stunnel.Allow{Roles: []string{"allocator"}}, HandshakeTimeout: 10 * time.Second, ConnectTimeout: 10 * time.Second,
		Metrics: stunnel.NewMetrics(reg)}, Logger: log})
	if err != nil {
		return fmt.Errorf("constructor: client of the allocators' node tunnels: %w (check the constructor certificate under <state-dir>/tls)", err)
	}
	tlsCfg := cl.ReloadingTLSConfig()
	switch n := c.Nodes.(type) {
	case *HTTPNodes:
		if n.Tunnel == nil {
			c.Nodes = &HTTPNodes{Client: n.Client, Scheme: n.Scheme, Tunnel: tlsCfg, Credentials: n.Credentials}
		}
	default:
		log.Warn("constructor has a node certificate but a custom NodeAPI: it is handed tunnel targets (instance@tunnel) as is")
	}
	return nil
}
