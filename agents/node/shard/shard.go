// Package shard is one Elasticsearch index on the node (one shard): a
// bleve (scorch) index for search and a bbolt file for everything that
// must be exact and durable: each document's _source, _version, _seq_no
// and _primary_term, the tombstones of deleted documents, an operation
// log (seq_no → id), the mapping and the settings.
//
// Writes are group-committed: concurrent writes are applied in one bbolt
// transaction (fsynced: the commit is the acknowledgement) and queued for
// the next refresh, which applies them to bleve in batches of at most
// 1,000 and records the highest seq_no it holds inside the last one.
// Searches see the last refresh (near real time, every
// index.refresh_interval); GET by id reads
// bbolt (real time). On open, the operation log entries newer than the
// bleve index's recorded seq_no are replayed, so a crash between the
// commit and bleve's own persistence loses nothing.
package shard

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/index/scorch"
	bolt "go.etcd.io/bbolt"

	"paddock/agents/node/dsl"
	"paddock/agents/node/eserr"
	"paddock/agents/node/mapping"
)

var (
	bucketDocs  = []byte("docs")
	bucketTombs = []byte("tombs")
	bucketOps   = []byte("ops")
	bucketMeta  = []byte("meta")
	keyMapping  = []byte("mapping")
	keySettings = []byte("settings")
	keySeq      = []byte("seq_no") // highest seq_no assigned
	keyTerm     = []byte("primary_term")
	internalSeq = []byte("paddock_seq_no") // in bleve: highest seq_no applied
)

// Meta is what the store knows of a document beside its source.
type Meta struct {
	Version, SeqNo, PrimaryTerm int64
	Routing                     string
}

// Shard is one index.
type Shard struct {
	name string
	dir  string
	log  *slog.Logger
	db   *bolt.DB
	idx  bleve.Index
	// dv caches the index's decoded doc values for searches.
	dv *dsl.DocValues

	// state guards mapping and settings (read by searches and writes).
	state    sync.RWMutex
	mapping  *mapping.Mapping
	settings Settings

	// wmu serialises the committer's transactions with mapping and
	// settings changes.
	wmu   sync.Mutex
	seqNo int64 // highest assigned (under wmu)
	term  int64

	// Replication state (replica.go): seqNo readable without wmu, the
	// global checkpoint known, the highest term of an op held and the
	// lowest seq_no the op log holds.
	maxSeq, gcp, lastTerm, logStart atomic.Int64

	queue chan *request

	// pending holds committed writes not yet in bleve, by id.
	pmu        sync.Mutex
	pending    map[string]pendingWrite
	pendingSeq int64

	rmu          sync.Mutex // serialises refreshes
	refreshedSeq atomic.Int64
	refreshedMu  sync.Mutex
	refreshedCh  chan struct{} // closed and replaced on every refresh

	settingsCh chan struct{}
	stop       chan struct{}
	done       sync.WaitGroup
	closeOnce  sync.Once
}

// Options configure Create and Open.
type Options struct {
	Logger *slog.Logger
	// DocValues is the memory budget of the decoded doc values searches
	// keep (dsl.DocValues), shared by the node's indices; nil gives the
	// index one of its own.
	DocValues *dsl.DocValuesBudget
}

func (o Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.Default()
	}
	return o.Logger
}

// Create makes a new index in dir (which must not exist).
func Create(dir, name string, m *mapping.Mapping, settings Settings, opts Options) (*Shard, error) {
	if m == nil {
		m = mapping.New()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create index directory %s: %w", dir, err)
	}
	idx, err := bleve.NewUsing(filepath.Join(dir, "bleve"), mapping.NewIndexMapping(m), scorch.Name, scorch.Name, bleveConfig())
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("create bleve index for [%s]: %w", name, err)
	}
	db, err := openDB(dir)
	if err != nil {
		idx.Close()
		os.RemoveAll(dir)
		return nil, err
	}
	mb, _ := json.Marshal(m)
	sb, _ := json.Marshal(settings)
	err = db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if err := meta.Put(keyMapping, mb); err != nil {
			return err
		}
		if err := meta.Put(keySettings, sb); err != nil {
			return err
		}
		return meta.Put(keyTerm, i64(1))
	})
	if err != nil {
		db.Close()
		idx.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initialise index [%s]: %w", name, err)
	}
	s := newShard(name, dir, db, idx, m, settings, opts)
	s.seqNo, s.term = -1, 1
	s.maxSeq.Store(-1)
	s.gcp.Store(-1)
	s.refreshedSeq.Store(-1)
	s.start()
	return s, nil
}

func bleveConfig() map[string]any {
	// bbolt is the acknowledgement point and the op log is replayed on
	// open, so bleve need not fsync each batch.
	return map[string]any{"unsafe_batch": true}
}

func openDB(dir string) (*bolt.DB, error) {
	file := filepath.Join(dir, "shard.db")
	db, err := bolt.Open(file, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w (is another node using this data directory?)", file, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketDocs, bucketTombs, bucketOps, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("initialise %s: %w", file, err)
	}
	return db, nil
}

func newShard(name, dir string, db *bolt.DB, idx bleve.Index, m *mapping.Mapping, settings Settings, opts Options) *Shard {
	return &Shard{
		name: name, dir: dir, log: opts.logger().With("index", name), db: db, idx: idx, dv: &dsl.DocValues{Budget: opts.DocValues},
		mapping: m, settings: settings,
		queue:       make(chan *request, 1024),
		pending:     map[string]pendingWrite{},
		refreshedCh: make(chan struct{}),
		settingsCh:  make(chan struct{}, 1),
		stop:        make(chan struct{}),
	}
}

// Open opens an existing index and replays the writes bleve lacks.
func Open(dir, name string, opts Options) (*Shard, error) {
	db, err := openDB(dir)
	if err != nil {
		return nil, err
	}
	var m mapping.Mapping
	var settings Settings
	var seq, term int64 = -1, 1
	err = db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if err := json.Unmarshal(meta.Get(keyMapping), &m); err != nil {
			return fmt.Errorf("stored mapping: %w", err)
		}
		if err := json.Unmarshal(meta.Get(keySettings), &settings); err != nil {
			return fmt.Errorf("stored settings: %w", err)
		}
		if v := meta.Get(keySeq); v != nil {
			seq = geti64(v)
		}
		if v := meta.Get(keyTerm); v != nil {
			term = geti64(v)
		}
		return nil
	})
	var replMeta func(*Shard)
	if err == nil {
		replMeta = func(s *Shard) {
			_ = db.View(func(tx *bolt.Tx) error { s.loadReplState(tx.Bucket(bucketMeta)); return nil })
		}
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open index [%s]: %w", name, err)
	}
	idx, err := bleve.OpenUsing(filepath.Join(dir, "bleve"), bleveConfig())
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open bleve index of [%s]: %w", name, err)
	}
	s := newShard(name, dir, db, idx, &m, settings, opts)
	s.seqNo, s.term = seq, term
	s.maxSeq.Store(seq)
	replMeta(s)
	applied := int64(-1)
	if v, err := idx.GetInternal(internalSeq); err == nil && v != nil {
		applied = geti64(v)
	}
	s.refreshedSeq.Store(applied)
	if err := s.replay(applied); err != nil {
		idx.Close()
		db.Close()
		return nil, fmt.Errorf("recover index [%s]: %w", name, err)
	}
	s.start()
	return s, nil
}

// replay re-applies the op log after seq "applied" (what bleve holds
// durably) to bleve, then trims the log up to "applied".
func (s *Shard) replay(applied int64) error {
	n := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOps).Cursor()
		docs := tx.Bucket(bucketDocs)
		for k, v := c.Seek(i64(applied + 1)); k != nil; k, v = c.Next() {
			id := string(v)
			rec := docs.Get(v)
			seq := geti64(k)
			if seq > s.pendingSeq {
				s.pendingSeq = seq
			}
			n++
			if rec == nil {
				s.pending[id] = pendingWrite{seq: seq}
				continue
			}
			_, src := decodeRecord(rec)
			parsed, err := mapping.DecodeSource(src)
			if err != nil {
				return err
			}
			doc, _, err := s.mapping.Document(id, parsed)
			if err != nil {
				return fmt.Errorf("document [%s]: %w", id, err)
			}
			s.pending[id] = pendingWrite{doc: doc, seq: seq}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if n > 0 {
		s.log.Info("replaying writes newer than the search index", "ops", n, "from_seq_no", applied+1)
		if err := s.Refresh(context.Background()); err != nil {
			return err
		}
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOps)
		c := b.Cursor()
		trimmed := false
		for k, _ := c.First(); k != nil && geti64(k) <= applied; k, _ = c.First() {
			if err := c.Delete(); err != nil {
				return err
			}
			trimmed = true
		}
		if !trimmed || applied+1 <= s.logStart.Load() {
			return nil
		}
		// Recovery from before applied+1 now needs a full copy.
		s.logStart.Store(applied + 1)
		return tx.Bucket(bucketMeta).Put(keyLogStart, i64(applied+1))
	})
}

func (s *Shard) start() {
	s.done.Add(2)
	go s.committer()
	go s.refresher()
}

// Close stops the shard: queued writes are answered, pending writes
// refreshed into bleve, files closed.
func (s *Shard) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.stop)
		s.done.Wait()
		if rerr := s.Refresh(context.Background()); rerr != nil {
			err = rerr
		}
		s.dv.Release()
		if cerr := s.idx.Close(); err == nil {
			err = cerr
		}
		if cerr := s.db.Close(); err == nil {
			err = cerr
		}
	})
	return err
}

// Delete closes the shard and removes its files.
func (s *Shard) Delete() error {
	_ = s.Close()
	return os.RemoveAll(s.dir)
}

// Name is the index name.
func (s *Shard) Name() string { return s.name }

// Index is the bleve index (searches see the last refresh).
func (s *Shard) Index() bleve.Index { return s.idx }

// DocValues is the index's doc-values cache, for searches (dsl.Target).
func (s *Shard) DocValues() *dsl.DocValues { return s.dv }

// Mapping is the current mapping.
func (s *Shard) Mapping() *mapping.Mapping {
	s.state.RLock()
	defer s.state.RUnlock()
	return s.mapping
}

// Settings are the current settings.
func (s *Shard) Settings() Settings {
	s.state.RLock()
	defer s.state.RUnlock()
	return s.settings
}

// PutMapping merges fields into the mapping (PUT _mapping).
func (s *Shard) PutMapping(m *mapping.Mapping) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	merged, err := s.Mapping().Merge(m)
	if err != nil {
		return err
	}
	b, _ := json.Marshal(merged)
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyMapping, b) }); err != nil {
		return err
	}
	s.state.Lock()
	s.mapping = merged
	s.state.Unlock()
	return nil
}

// PutSettings changes dynamic settings (PUT _settings).
func (s *Shard) PutSettings(raw map[string]any) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	next, err := s.Settings().Apply(raw, false)
	if err != nil {
		return err
	}
	return s.storeSettingsLocked(next)
}

// storeSettingsLocked persists and applies settings (wmu held).
func (s *Shard) storeSettingsLocked(next Settings) error {
	b, _ := json.Marshal(next)
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keySettings, b) }); err != nil {
		return err
	}
	s.state.Lock()
	s.settings = next
	s.state.Unlock()
	select {
	case s.settingsCh <- struct{}{}:
	default:
	}
	return nil
}

// Get reads a document in real time (committed writes, refreshed or not).
func (s *Shard) Get(id string) (src []byte, meta Meta, ok bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		rec := tx.Bucket(bucketDocs).Get([]byte(id))
		if rec == nil {
			return nil
		}
		ok = true
		var body []byte
		meta, body = decodeRecord(rec)
		src = append([]byte(nil), body...)
		return nil
	})
	return src, meta, ok, err
}

// Scan calls fn for every document in id order until fn returns false.
func (s *Shard) Scan(fn func(id string, src []byte, meta Meta) bool) error {
	return s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketDocs).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			meta, src := decodeRecord(v)
			if !fn(string(k), src, meta) {
				return nil
			}
		}
		return nil
	})
}

// Stats are an index's counts.
type Stats struct {
	Docs        uint64 // documents searchable (at the last refresh)
	StoredDocs  int    // documents committed
	StoreBytes  int64  // bytes on disk
	SeqNo       int64  // highest seq_no assigned
	RefreshedTo int64  // highest seq_no searchable
}

// Stats returns the index's counts.
func (s *Shard) Stats() Stats {
	st := Stats{RefreshedTo: s.refreshedSeq.Load()}
	st.Docs, _ = s.idx.DocCount()
	_ = s.db.View(func(tx *bolt.Tx) error {
		st.StoredDocs = tx.Bucket(bucketDocs).Stats().KeyN
		return nil
	})
	s.wmu.Lock()
	st.SeqNo = s.seqNo
	s.wmu.Unlock()
	_ = filepath.WalkDir(s.dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				st.StoreBytes += info.Size()
			}
		}
		return nil
	})
	return st
}

// record layout: version, seq_no, primary_term (8 bytes each), routing
// length (2 bytes), routing, source.
func encodeRecord(m Meta, src []byte) []byte {
	b := make([]byte, 26+len(m.Routing)+len(src))
	binary.BigEndian.PutUint64(b[0:], uint64(m.Version))
	binary.BigEndian.PutUint64(b[8:], uint64(m.SeqNo))
	binary.BigEndian.PutUint64(b[16:], uint64(m.PrimaryTerm))
	binary.BigEndian.PutUint16(b[24:], uint16(len(m.Routing)))
	copy(b[26:], m.Routing)
	copy(b[26+len(m.Routing):], src)
	return b
}

func decodeRecord(b []byte) (Meta, []byte) {
	m := Meta{
		Version:     int64(binary.BigEndian.Uint64(b[0:])),
		SeqNo:       int64(binary.BigEndian.Uint64(b[8:])),
		PrimaryTerm: int64(binary.BigEndian.Uint64(b[16:])),
	}
	n := int(binary.BigEndian.Uint16(b[24:]))
	m.Routing = string(b[26 : 26+n])
	return m, b[26+n:]
}

func i64(n int64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, uint64(n))
	return b
}

func geti64(b []byte) int64 { return int64(binary.BigEndian.Uint64(b)) }

// ErrClosed is returned for writes to a closed shard.
var ErrClosed = eserr.New(http.StatusServiceUnavailable, "index_closed_exception", "the index is closed or being deleted")
