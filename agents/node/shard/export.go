package shard

import (
	bolt "go.etcd.io/bbolt"
)

// Read-only export for snapshots: one bbolt read transaction gives a
// point in time of the index (documents with their versions, deletes,
// the highest seq_no and the mapping of that moment).

// ExportDoc is a document (or, with Deleted, a delete) as of an export.
// Source is only valid during the callback: copy it to keep it.
type ExportDoc struct {
	ID      string
	Source  []byte
	Meta    Meta
	Deleted bool
}

// ExportInfo describes the point in time an export read.
type ExportInfo struct {
	MaxSeqNo int64 // highest seq_no committed at that point
	// ResumeSeqNo is where a later export "since" should start so that
	// it misses nothing: MaxSeqNo, or the global checkpoint when that is
	// lower (a replica may hold ops above it with gaps below).
	ResumeSeqNo int64
	Docs        int64  // live documents at that point
	Mapping     []byte // the mapping at that point (JSON), nil if none stored
	// FromOpLog tells whether a "since" export walked the op log (true)
	// or scanned every document and tombstone (the op log no longer
	// reached back to since).
	FromOpLog bool
}

// Export calls fn, inside one read transaction, for every live document
// in id order (since < 0), or for every document written or deleted
// after seq_no since (since >= 0; each id once, in its latest state).
// Deleted documents are found through their tombstones, which the shard
// keeps. A non-nil error from fn stops the export and is returned.
func (s *Shard) Export(since int64, fn func(ExportDoc) error) (ExportInfo, error) {
	var info ExportInfo
	err := s.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if v := meta.Get(keySeq); v != nil {
			info.MaxSeqNo = geti64(v)
		}
		info.ResumeSeqNo = info.MaxSeqNo
		if v := meta.Get(keyGCP); v != nil {
			if g := geti64(v); g >= 0 && g < info.MaxSeqNo {
				info.ResumeSeqNo = g
			}
		}
		if v := meta.Get(keyMapping); v != nil {
			info.Mapping = append([]byte(nil), v...)
		}
		docs, tombs := tx.Bucket(bucketDocs), tx.Bucket(bucketTombs)
		info.Docs = int64(docs.Stats().KeyN)
		if since < 0 {
			c := docs.Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				m, src := decodeRecord(v)
				if err := fn(ExportDoc{ID: string(k), Source: src, Meta: m}); err != nil {
					return err
				}
			}
			return nil
		}
		if since >= info.MaxSeqNo {
			return nil
		}
		emit := func(id []byte) error {
			if v := docs.Get(id); v != nil {
				m, src := decodeRecord(v)
				if m.SeqNo <= since {
					return nil
				}
				return fn(ExportDoc{ID: string(id), Source: src, Meta: m})
			}
			if t := tombs.Get(id); t != nil && geti64(t[8:16]) > since {
				return fn(ExportDoc{ID: string(id), Deleted: true, Meta: Meta{Version: geti64(t[0:8]), SeqNo: geti64(t[8:16])}})
			}
			return nil
		}
		// The op log holds seq_no → id from the last open on: use it
		// when it reaches back to since+1, else scan.
		oc := tx.Bucket(bucketOps).Cursor()
		if k, _ := oc.First(); k != nil && geti64(k) <= since+1 {
			info.FromOpLog = true
			seen := map[string]bool{}
			for k, v := oc.Seek(i64(since + 1)); k != nil; k, v = oc.Next() {
				if seen[string(v)] {
					continue
				}
				seen[string(v)] = true
				if err := emit(v); err != nil {
					return err
				}
			}
			return nil
		}
		c := docs.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if err := emit(k); err != nil {
				return err
			}
		}
		tc := tombs.Cursor()
		for k, _ := tc.First(); k != nil; k, _ = tc.Next() {
			if err := emit(k); err != nil {
				return err
			}
		}
		return nil
	})
	return info, err
}
