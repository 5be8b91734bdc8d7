package node

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

var (
	bucketIndices = []byte("indices")
	bucketRepos   = []byte("repos")
	bucketMeta    = []byte("meta")
	keyUUID       = []byte("uuid")
	keyRouting    = []byte("replication")
)

// store is the node's own bbolt file: registered snapshot repositories
// and metadata (cluster uuid, peers). Indices live in their own
// directories (package shard); the "indices" bucket only holds what an
// older node kept there, moved out on start.
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

// legacyIndices returns the documents of the indices an older node kept
// in this file (one bucket per index, id → source), to move them into
// their own indices once.
func (s *store) legacyIndices() (map[string]map[string][]byte, error) {
	out := map[string]map[string][]byte{}
	err := s.db.View(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketIndices)
		return root.ForEachBucket(func(name []byte) error {
			docs := map[string][]byte{}
			err := root.Bucket(name).ForEach(func(k, v []byte) error {
				docs[string(k)] = append([]byte(nil), v...)
				return nil
			})
			out[string(name)] = docs
			return err
		})
	})
	return out, err
}

// dropLegacyIndex forgets an older node's index once it has moved.
func (s *store) dropLegacyIndex(name string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		err := tx.Bucket(bucketIndices).DeleteBucket([]byte(name))
		if errors.Is(err, bolt.ErrBucketNotFound) {
			return nil
		}
		return err
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
