package proxy

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

var errNoCache = errors.New("no disk cache yet")

// loadSnapshot reads the routing table a proxy saved earlier.
func loadSnapshot(file string) (Snapshot, error) {
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return Snapshot{}, errNoCache
	}
	if err != nil {
		return Snapshot{}, err
	}
	var s Snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return Snapshot{}, fmt.Errorf("%s is not a routing table (%w): delete it, the proxy rewrites it once ZooKeeper answers", file, err)
	}
	if s.Routes == nil {
		return Snapshot{}, fmt.Errorf("%s holds no routes: delete it, the proxy rewrites it once ZooKeeper answers", file)
	}
	if s.Allocators == nil {
		s.Allocators = map[string]AllocatorView{}
	}
	return s, nil
}

// saveSnapshot writes atomically (temp file, fsync, rename), so a crash
// leaves the old table or the new one.
func saveSnapshot(file string, s Snapshot) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), ".routes-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), file)
}

// requestSave asks the saver to persist the current snapshot.
func (p *Proxy) requestSave() {
	select {
	case p.saveCh <- struct{}{}:
	default:
	}
}

// saver persists the table after changes, at most every 100 ms.
func (p *Proxy) saver(ctx context.Context) {
	if p.cfg.CacheFile == "" {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.saveCh:
		}
		p.mu.Lock()
		s := p.snap
		p.mu.Unlock()
		if s.Source != "zookeeper" {
			continue
		}
		s.SavedAt = time.Now().UTC()
		if err := saveSnapshot(p.cfg.CacheFile, s); err != nil {
			p.met.cacheSave.WithLabelValues("error").Inc()
			p.log.Warn("cannot write the routing table to disk: a restart during a ZooKeeper outage would start empty", "file", p.cfg.CacheFile, "err", err)
		} else {
			p.met.cacheSave.WithLabelValues("ok").Inc()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// BufferedWriter batches log lines (the access log) and flushes them
// every interval, so logging does not cost a syscall per request.
type BufferedWriter struct {
	mu   sync.Mutex
	bw   *bufio.Writer
	stop chan struct{}
	done chan struct{}
}

// NewBufferedWriter wraps w; Close flushes and stops the flusher.
func NewBufferedWriter(w io.Writer, interval time.Duration) *BufferedWriter {
	b := &BufferedWriter{bw: bufio.NewWriterSize(w, 64<<10), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(b.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-b.stop:
				return
			case <-t.C:
				b.Flush()
			}
		}
	}()
	return b
}

func (b *BufferedWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.bw.Write(p)
}

// Flush writes out what is buffered.
func (b *BufferedWriter) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.bw.Flush()
}

// Close flushes and stops the background flusher.
func (b *BufferedWriter) Close() error {
	close(b.stop)
	<-b.done
	return b.Flush()
}
