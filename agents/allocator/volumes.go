package allocator

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// ledger remembers when each data volume lost its instance, so volumes
// are removed only after the grace period, across allocator restarts.
type ledger struct {
	file string

	mu      sync.Mutex
	removed map[string]time.Time // volume name → when its instance went
}

func openLedger(file string) (*ledger, error) {
	l := &ledger{file: file, removed: map[string]time.Time{}}
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return l, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read volume ledger %s: %w", file, err)
	}
	if err := json.Unmarshal(b, &l.removed); err != nil {
		return nil, fmt.Errorf("volume ledger %s is malformed: %w (delete it: volumes then get a fresh grace period)", file, err)
	}
	return l, nil
}

// mark records that vol lost its instance now (kept if already marked).
func (l *ledger) mark(vol string, now time.Time) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t, ok := l.removed[vol]; ok {
		return t, false
	}
	l.removed[vol] = now
	return now, true
}

// clear forgets vol (its instance is back, or it was deleted).
func (l *ledger) clear(vol string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.removed[vol]; !ok {
		return false
	}
	delete(l.removed, vol)
	return true
}

func (l *ledger) save() error {
	l.mu.Lock()
	b, _ := json.MarshalIndent(l.removed, "", "  ")
	l.mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(l.file), 0o700); err != nil {
		return err
	}
	tmp := l.file + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, l.file)
}
