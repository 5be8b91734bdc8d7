package stunnel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// LoadConfig drives a tunnel benchmark: clients connect to Connect (a
// tunnel's plain entry), the tunnel forwards to the sink served on Sink.
type LoadConfig struct {
	// Mode is "bulk" (one long stream per connection, bytes counted at
	// the sink) or "handshake" (connect, 1-byte echo, close: every
	// connection is a new TLS handshake inside the tunnel).
	Mode        string
	Connect     string
	Sink        string
	Duration    time.Duration
	Concurrency int
}

// LoadResult is what a benchmark measured.
type LoadResult struct {
	Mode        string  `json:"mode"`
	Seconds     float64 `json:"seconds"`
	Concurrency int     `json:"concurrency"`
	Bytes       int64   `json:"bytes,omitempty"`
	MBps        float64 `json:"mb_per_second,omitempty"`
	Connections int64   `json:"connections,omitempty"`
	PerSecond   float64 `json:"connections_per_second,omitempty"`
	Errors      int64   `json:"errors"`
}

// RunLoad serves the sink (it echoes in handshake mode and before the
// measurement starts, so the readiness probe works in both modes), waits until the tunnel answers, runs the load
// for Duration and reports.
func RunLoad(ctx context.Context, cfg LoadConfig) (LoadResult, error) {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 1
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 5 * time.Second
	}
	res := LoadResult{Mode: cfg.Mode, Concurrency: cfg.Concurrency}
	ln, err := net.Listen("tcp", cfg.Sink)
	if err != nil {
		return res, fmt.Errorf("sink: %w", err)
	}
	defer ln.Close()
	var sunk atomic.Int64
	var counting atomic.Bool
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 256<<10)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						if counting.Load() {
							sunk.Add(int64(n))
						}
						if cfg.Mode == "handshake" || !counting.Load() {
							if _, err := c.Write(buf[:n]); err != nil {
								return
							}
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	// Wait for the tunnel chain to answer end to end.
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := probe(cfg.Connect)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return res, fmt.Errorf("tunnel at %s does not answer: %w", cfg.Connect, err)
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	lctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	var conns, errs atomic.Int64
	var wg sync.WaitGroup
	counting.Store(true)
	start := time.Now()
	for range cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch cfg.Mode {
			case "bulk":
				if err := bulk(lctx, cfg.Connect); err != nil {
					errs.Add(1)
				}
			default:
				for lctx.Err() == nil {
					if err := probe(cfg.Connect); err != nil {
						if lctx.Err() == nil {
							errs.Add(1)
						}
						continue
					}
					conns.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	counting.Store(false)
	res.Seconds = el
	res.Errors = errs.Load()
	if cfg.Mode == "bulk" {
		res.Bytes = sunk.Load()
		res.MBps = float64(res.Bytes) / el / 1e6
	} else {
		res.Connections = conns.Load()
		res.PerSecond = float64(res.Connections) / el
	}
	return res, nil
}

func probe(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte{'x'}); err != nil {
		return err
	}
	b := make([]byte, 1)
	_, err = io.ReadFull(c, b)
	return err
}

func bulk(ctx context.Context, addr string) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	go func() { <-ctx.Done(); c.Close() }()
	buf := make([]byte, 256<<10)
	for ctx.Err() == nil {
		if _, err := c.Write(buf); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	return nil
}

// ErrBadMode is returned for an unknown load mode.
var ErrBadMode = errors.New("load mode must be bulk or handshake")
