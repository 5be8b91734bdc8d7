package node

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

var (
	bucketIndices = []byte("indices")
	bucketRepos   = []byte("repos")
	bucketMeta    = []byte("meta")
	keyUUID       = []byte("uuid")
	keyPeers      = []byte("peers")
)

// store is the node's bbolt file: one nested bucket per index (id →
// source JSON), registered snapshot repositories and metadata.
type store struct {
	db *bolt.DB
}

func openStore(file string) (*store, error) {
	db, err := bolt.Open(file, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open data file %s: %w (is another node using this data directory?)", file, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketIndices, bucketRepos, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if meta.Get(keyUUID) == nil {
			return meta.Put(keyUUID, []byte(randomID()))
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("initialise data file %s: %w", file, err)
	}
	return &store{db: db}, nil
}

func (s *store) close() error { return s.db.Close() }

func randomID() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *store) ping() error {
	return s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketIndices) == nil {
			return errors.New("indices bucket missing")
		}
		return nil
	})
}

func (s *store) uuid() string {
	var id string
	_ = s.db.View(func(tx *bolt.Tx) error {
		id = string(tx.Bucket(bucketMeta).Get(keyUUID))
		return nil
	})
	return id
}

func (s *store) peers() []string {
	var out []string
	_ = s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketMeta).Get(keyPeers); b != nil {
			return json.Unmarshal(b, &out)
		}
		return nil
	})
	return out
}

func (s *store) setPeers(p []string) error {
	b, _ := json.Marshal(p)
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyPeers, b) })
}

func indexNotFound(index string) *esError {
	e := errf(http.StatusNotFound, "index_not_found_exception", "no such index [%s]", index)
	e.Index = index
	return e
}

// indices lists index names, sorted.
func (s *store) indices() ([]string, error) {
	var out []string
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketIndices).ForEachBucket(func(k []byte) error {
			out = append(out, string(k))
			return nil
		})
	})
	sort.Strings(out)
	return out, err
}

// docCount returns an index's document count (-1 if missing).
func (s *store) docCount(index string) int {
	n := -1
	_ = s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketIndices).Bucket([]byte(index)); b != nil {
			n = b.Stats().KeyN
		}
		return nil
	})
	return n
}

// createIndex creates an empty index; ErrExists-like error if present.
func (s *store) createIndex(index string) (bool, error) {
	created := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketIndices)
		if root.Bucket([]byte(index)) != nil {
			return nil
		}
		created = true
		_, err := root.CreateBucket([]byte(index))
		return err
	})
	return created, err
}

func (s *store) deleteIndex(index string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		err := tx.Bucket(bucketIndices).DeleteBucket([]byte(index))
		if errors.Is(err, bolt.ErrBucketNotFound) {
			return indexNotFound(index)
		}
		return err
	})
}

// docOp is one write of a batch: source nil means delete.
type docOp struct {
	index  string
	id     string
	source json.RawMessage
	create bool // fail if the document exists
}

// opResult is the outcome of one docOp.
type opResult struct {
	result string // created, updated, deleted, not_found
	err    *esError
}

// apply runs write ops in one transaction; per-op failures (create of an
// existing doc) do not abort the others.
func (s *store) apply(ops []docOp) ([]opResult, error) {
	res := make([]opResult, len(ops))
	err := s.db.Update(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketIndices)
		for i, op := range ops {
			b := root.Bucket([]byte(op.index))
			if op.source == nil {
				if b == nil || b.Get([]byte(op.id)) == nil {
					res[i] = opResult{result: "not_found"}
					continue
				}
				if err := b.Delete([]byte(op.id)); err != nil {
					return err
				}
				res[i] = opResult{result: "deleted"}
				continue
			}
			if b == nil {
				var err error
				if b, err = root.CreateBucket([]byte(op.index)); err != nil {
					return err
				}
			}
			existed := b.Get([]byte(op.id)) != nil
			if existed && op.create {
				e := errf(http.StatusConflict, "version_conflict_engine_exception", "[%s]: version conflict, document already exists", op.id)
				e.Index = op.index
				res[i] = opResult{err: e}
				continue
			}
			if err := b.Put([]byte(op.id), op.source); err != nil {
				return err
			}
			if existed {
				res[i] = opResult{result: "updated"}
			} else {
				res[i] = opResult{result: "created"}
			}
		}
		return nil
	})
	return res, err
}

// get returns a document's source.
func (s *store) get(index, id string) (json.RawMessage, error) {
	var out json.RawMessage
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketIndices).Bucket([]byte(index))
		if b == nil {
			return indexNotFound(index)
		}
		if v := b.Get([]byte(id)); v != nil {
			out = append(json.RawMessage(nil), v...)
		}
		return nil
	})
	return out, err
}

// scan calls fn for each document of the indices (all when empty), in
// index then id order, until fn returns false.
func (s *store) scan(indices []string, fn func(index, id string, src []byte) bool) error {
	return s.db.View(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketIndices)
		if len(indices) == 0 {
			_ = root.ForEachBucket(func(k []byte) error {
				indices = append(indices, string(k))
				return nil
			})
		}
		for _, idx := range indices {
			b := root.Bucket([]byte(idx))
			if b == nil {
				return indexNotFound(idx)
			}
			c := b.Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				if !fn(idx, string(k), v) {
					return nil
				}
			}
		}
		return nil
	})
}

// replaceIndices swaps the given indices for the snapshot's documents in
// one transaction (restore).
func (s *store) replaceIndices(data map[string]map[string]json.RawMessage) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketIndices)
		for idx, docs := range data {
			if err := root.DeleteBucket([]byte(idx)); err != nil && !errors.Is(err, bolt.ErrBucketNotFound) {
				return err
			}
			b, err := root.CreateBucket([]byte(idx))
			if err != nil {
				return err
			}
			for id, src := range docs {
				if err := b.Put([]byte(id), src); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// repository is a registered snapshot repository.
type repository struct {
	Type     string            `json:"type"`
	Settings map[string]any    `json:"settings"`
	Extra    map[string]string `json:"-"`
}

func (s *store) putRepo(name string, r repository) error {
	b, _ := json.Marshal(r)
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketRepos).Put([]byte(name), b) })
}

func (s *store) repo(name string) (repository, bool, error) {
	var r repository
	found := false
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRepos).Get([]byte(name))
		if b == nil {
			return nil
		}
		found = true
		return json.Unmarshal(b, &r)
	})
	return r, found, err
}

func (s *store) repos() (map[string]repository, error) {
	out := map[string]repository{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRepos).ForEach(func(k, v []byte) error {
			var r repository
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			out[string(k)] = r
			return nil
		})
	})
	return out, err
}

func (s *store) deleteRepo(name string) (bool, error) {
	found := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRepos)
		if b.Get([]byte(name)) == nil {
			return nil
		}
		found = true
		return b.Delete([]byte(name))
	})
	return found, err
}
