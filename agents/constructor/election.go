package constructor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/go-zookeeper/zk"

	"paddock/engine"
)

// election is leader election on EPHEMERAL_SEQUENTIAL znodes under
// /paddock/leader/constructor: the lowest sequence leads, each candidate
// watches the list. Leadership is given up the moment the session is
// disconnected (it may expire and another may take over), and taken again
// only once the candidate's own znode is verified, with the current
// session as its owner, to be the lowest.
type election struct {
	s   *engine.Store
	id  string
	log *slog.Logger
	// node is our candidate znode (full path), "" when not created.
	node string
}

const candidatePrefix = "n_"

func seqOf(name string) string {
	if i := strings.LastIndex(name, "_"); i >= 0 {
		return name[i+1:]
	}
	return name
}

// ensureCandidate makes sure our znode exists and belongs to this session.
func (e *election) ensureCandidate(ctx context.Context) error {
	if e.node != "" {
		ok, st, err := e.s.Exists(ctx, e.node)
		if err != nil {
			return err
		}
		if ok && st.EphemeralOwner == e.s.SessionID() {
			return nil
		}
		if ok {
			_ = e.s.Delete(ctx, e.node, engine.AnyVersion)
		}
		e.node = ""
	}
	p, err := e.s.CreateSequential(ctx, engine.PathLeaderCons+"/"+candidatePrefix, e.id, true)
	if err != nil {
		return fmt.Errorf("join the constructor election: %w", err)
	}
	e.node = p
	e.log.Info("joined constructor election", "node", path.Base(p))
	return nil
}

// leading reports whether our znode is the lowest, and returns a watch
// channel that fires when the candidate list changes.
func (e *election) leading(ctx context.Context) (bool, string, <-chan zk.Event, error) {
	type res struct {
		kids []string
		ch   <-chan zk.Event
	}
	r := make(chan res, 1)
	errc := make(chan error, 1)
	go func() {
		kids, _, ch, err := e.s.Conn().ChildrenW(engine.PathLeaderCons)
		if err != nil {
			errc <- err
			return
		}
		r <- res{kids, ch}
	}()
	var got res
	select {
	case <-ctx.Done():
		return false, "", nil, ctx.Err()
	case err := <-errc:
		return false, "", nil, fmt.Errorf("list constructor candidates: %w", err)
	case got = <-r:
	}
	sort.Slice(got.kids, func(i, j int) bool { return seqOf(got.kids[i]) < seqOf(got.kids[j]) })
	if len(got.kids) == 0 {
		return false, "", got.ch, nil
	}
	lowest := engine.PathLeaderCons + "/" + got.kids[0]
	if lowest == e.node {
		return true, e.id, got.ch, nil
	}
	b, _, err := e.s.Get(ctx, lowest)
	if err != nil && !errors.Is(err, engine.ErrNotFound) {
		return false, "", got.ch, err
	}
	return false, string(b), got.ch, nil
}

// resign deletes our candidate znode.
func (e *election) resign() {
	if e.node == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = e.s.Delete(ctx, e.node, engine.AnyVersion)
	e.node = ""
}
