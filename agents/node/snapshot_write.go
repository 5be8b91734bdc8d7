package node

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"paddock/agents/node/mapping"
	"paddock/agents/node/meta"
	"paddock/agents/node/shard"
	"paddock/agents/node/snaprepo"
)

// Taking a snapshot, one index at a time:
//
//  1. Find the index in the latest successful snapshot of the repository
//     (same index uuid). If there is one, export what changed since its
//     max seq_no (one read transaction) into delta chunks.
//  2. Without a previous snapshot, or when the chain of deltas would
//     outgrow rebaseRatio of the base, export every live document (one
//     read transaction) into base chunks instead.
//  3. Chunks are spooled to the node's disk inside the transaction (so it
//     stays short), then uploaded under blobs/<sha256> unless a blob of
//     that hash is already there: unchanged data is never uploaded twice.
//  4. The manifest is written last. A failure anywhere leaves no manifest
//     (the snapshot is FAILED, kept in the node's memory); the blobs it
//     uploaded are removed by a later delete once they are old.

// chunkSize is the target size of a document chunk.
const chunkSize = 4 << 20

// rebaseRatio: a new base is taken when the deltas would exceed this
// share of the base's bytes; maxDeltas caps the chain's length.
const (
	rebaseRatio = 0.5
	maxDeltas   = 64
)

// indexMeta is an index's metadata blob.
type indexMeta struct {
	Mappings json.RawMessage       `json:"mappings,omitempty"`
	Settings map[string]any        `json:"settings"`
	Aliases  map[string]meta.Alias `json:"aliases,omitempty"`
}

// chunkLine is one line of a document chunk (ndjson).
type chunkLine struct {
	ID      string          `json:"_id"`
	Version int64           `json:"_version"`
	Routing string          `json:"_routing,omitempty"`
	Deleted bool            `json:"deleted,omitempty"`
	Source  json.RawMessage `json:"_source,omitempty"`
}

// runSnapshot takes snapshot m of the given indices into st and records
// its outcome in m (under s.snaps.mu).
func (s *Server) runSnapshot(ctx context.Context, repo string, st snaprepo.Store, m *manifest, names []string) {
	sn := s.snaps
	lock := sn.lock(repo)
	lock.Lock()
	defer lock.Unlock()
	log := s.log.With("repository", repo, "snapshot", m.Snapshot)
	log.Info("snapshot started", "indices", len(names))
	err := s.writeSnapshot(ctx, st, m, names)
	sn.mu.Lock()
	m.EndTime = time.Now().UTC()
	if err != nil {
		m.State, m.Reason = stateFailed, err.Error()
		sn.pruneFailed(repo)
	} else {
		m.State = stateSuccess
	}
	sn.mu.Unlock()
	if err != nil {
		log.Warn("snapshot failed: no manifest was written; the next snapshot starts from the last good one", "err", err)
		return
	}
	// The repository holds it now.
	sn.forget(repo+"/"+m.Snapshot, m)
	log.Info("snapshot done", "uploaded_blobs", m.Incremental.Files, "uploaded_bytes", m.Incremental.Bytes,
		"total_bytes", m.Total.Bytes, "took", m.EndTime.Sub(m.StartTime).Round(time.Millisecond))
}

func (s *Server) writeSnapshot(ctx context.Context, st snaprepo.Store, m *manifest, names []string) error {
	prevs, err := readManifests(ctx, st)
	if err != nil {
		return fmt.Errorf("read the repository's snapshots: %w", err)
	}
	objs, err := st.List(ctx, blobPrefix)
	if err != nil {
		return fmt.Errorf("list the repository's blobs: %w", err)
	}
	have := make(map[string]bool, len(objs))
	for _, o := range objs {
		have[strings.TrimPrefix(o.Key, blobPrefix)] = true
	}
	spool, err := os.MkdirTemp(s.cfg.DataDir, ".snapshot-spool-")
	if err != nil {
		return fmt.Errorf("spool directory: %w", err)
	}
	defer os.RemoveAll(spool)
	up := &uploader{ctx: ctx, st: st, have: have, spool: spool, hook: s.snaps.beforeUpload}
	total := map[string]blobRef{}
	for _, name := range names {
		sh := s.index(name)
		if sh == nil {
			return fmt.Errorf("index [%s] was deleted during the snapshot", name)
		}
		im, err := s.snapshotIndex(ctx, up, sh, latestOf(prevs, name, sh.Settings().UUID))
		if err != nil {
			return fmt.Errorf("index [%s]: %w", name, err)
		}
		for _, b := range im.blobs() {
			total[b.Hash] = b
		}
		s.snaps.mu.Lock()
		m.Indices[name] = im
		m.Incremental = up.uploaded
		s.snaps.mu.Unlock()
	}
	final := m.copyLocked(&s.snaps.mu)
	final.State = stateSuccess
	final.EndTime = time.Now().UTC()
	final.Total = blobStats{}
	for _, b := range total {
		final.Total.add(b)
	}
	s.snaps.mu.Lock()
	m.Total = final.Total
	s.snaps.mu.Unlock()
	b, err := json.MarshalIndent(final, "", " ")
	if err != nil {
		return err
	}
	if err := st.Put(ctx, manifestPrefix+m.Snapshot+".json", bytes.NewReader(b), int64(len(b))); err != nil {
		return fmt.Errorf("write the manifest: %w", err)
	}
	return nil
}

func (m *manifest) copyLocked(mu interface {
	Lock()
	Unlock()
}) manifest {
	mu.Lock()
	defer mu.Unlock()
	return m.copy()
}

// latestOf returns index name's entry in the latest successful snapshot
// that holds the same index (uuid), or nil.
func latestOf(ms []*manifest, name, uuid string) *indexManifest {
	var best *indexManifest
	var at time.Time
	for _, m := range ms {
		im := m.Indices[name]
		if m.State != stateSuccess || im == nil || im.UUID != uuid || uuid == "" {
			continue
		}
		if best == nil || m.StartTime.After(at) {
			best, at = im, m.StartTime
		}
	}
	return best
}

// snapshotIndex writes one index: a delta on prev when it is worth it,
// else a new base.
func (s *Server) snapshotIndex(ctx context.Context, up *uploader, sh *shard.Shard, prev *indexManifest) (*indexManifest, error) {
	before := up.uploaded
	im := &indexManifest{UUID: sh.Settings().UUID}
	if prev != nil && len(prev.Deltas) < maxDeltas {
		cw := up.newChunks()
		info, err := sh.Export(prev.MaxSeqNo, cw.add)
		if err != nil {
			return nil, errors.Join(err, cw.discard())
		}
		if err := cw.close(); err != nil {
			return nil, err
		}
		if float64(prev.deltaBytes()+cw.bytes) <= rebaseRatio*float64(prev.baseBytes()) {
			im.Base = prev.Base
			im.Deltas = append(append([][]blobRef{}, prev.Deltas...), nil)
			im.MaxSeqNo = info.ResumeSeqNo
			im.Docs = info.Docs
			refs, err := up.upload(cw)
			if err != nil {
				return nil, err
			}
			if len(refs) == 0 {
				im.Deltas = im.Deltas[:len(im.Deltas)-1]
			} else {
				im.Deltas[len(im.Deltas)-1] = refs
			}
			if im.Meta, err = s.uploadMeta(up, sh, info.Mapping); err != nil {
				return nil, err
			}
			return im.withStats(up.uploaded, before), nil
		}
		if err := cw.discard(); err != nil {
			return nil, err
		}
	}
	cw := up.newChunks()
	info, err := sh.Export(-1, cw.add)
	if err != nil {
		return nil, errors.Join(err, cw.discard())
	}
	if err := cw.close(); err != nil {
		return nil, err
	}
	im.MaxSeqNo, im.Docs = info.ResumeSeqNo, info.Docs
	if im.Base, err = up.upload(cw); err != nil {
		return nil, err
	}
	if im.Meta, err = s.uploadMeta(up, sh, info.Mapping); err != nil {
		return nil, err
	}
	return im.withStats(up.uploaded, before), nil
}

func (im *indexManifest) withStats(after, before blobStats) *indexManifest {
	im.Incremental = blobStats{Files: after.Files - before.Files, Bytes: after.Bytes - before.Bytes}
	seen := map[string]bool{}
	for _, b := range im.blobs() {
		if !seen[b.Hash] {
			seen[b.Hash] = true
			im.Total.add(b)
		}
	}
	return im
}

func (s *Server) uploadMeta(up *uploader, sh *shard.Shard, mappingJSON []byte) (blobRef, error) {
	set := sh.Settings()
	im := indexMeta{
		Mappings: mappingJSON,
		Settings: map[string]any{
			"number_of_shards":   strconv.Itoa(set.Shards),
			"number_of_replicas": strconv.Itoa(set.Replicas),
			"refresh_interval":   set.JSON(sh.Name())["index"].(map[string]any)["refresh_interval"],
		},
		Aliases: s.meta.AliasesOf(sh.Name()),
	}
	b, err := json.Marshal(im)
	if err != nil {
		return blobRef{}, err
	}
	return up.uploadBytes(b)
}

// uploader puts content-addressed blobs, skipping those already there.
type uploader struct {
	ctx      context.Context
	st       snaprepo.Store
	have     map[string]bool
	spool    string
	n        int
	uploaded blobStats
	hook     func() // run once before the first upload (tests)
}

func (u *uploader) put(key string, r io.Reader, size int64) error {
	if u.hook != nil {
		u.hook()
		u.hook = nil
	}
	return u.st.Put(u.ctx, key, r, size)
}

func (u *uploader) uploadBytes(b []byte) (blobRef, error) {
	sum := sha256.Sum256(b)
	ref := blobRef{Hash: hex.EncodeToString(sum[:]), Size: int64(len(b))}
	if u.have[ref.Hash] {
		return ref, nil
	}
	if err := u.put(blobPrefix+ref.Hash, bytes.NewReader(b), ref.Size); err != nil {
		return ref, err
	}
	u.have[ref.Hash] = true
	u.uploaded.add(ref)
	return ref, nil
}

// uploadWorkers is how many blobs upload at once.
const uploadWorkers = 4

// upload puts the spooled chunks not in the repository yet (a few at a
// time) and removes them from the spool.
func (u *uploader) upload(cw *chunkWriter) ([]blobRef, error) {
	defer cw.discard()
	refs := make([]blobRef, 0, len(cw.chunks))
	var todo []spooled
	queued := map[string]bool{}
	for _, c := range cw.chunks {
		refs = append(refs, c.ref)
		if !u.have[c.ref.Hash] && !queued[c.ref.Hash] {
			queued[c.ref.Hash] = true
			todo = append(todo, c)
		}
	}
	if len(todo) > 0 && u.hook != nil {
		u.hook()
		u.hook = nil
	}
	ctx, cancel := context.WithCancel(u.ctx)
	defer cancel()
	jobs := make(chan spooled)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for range min(uploadWorkers, len(todo)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range jobs {
				err := putFile(ctx, u.st, c)
				mu.Lock()
				if err != nil && first == nil {
					first = err
					cancel()
				}
				if err == nil {
					u.have[c.ref.Hash] = true
					u.uploaded.add(c.ref)
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for _, c := range todo {
		select {
		case jobs <- c:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if first == nil {
		first = u.ctx.Err()
	}
	if first != nil {
		return nil, first
	}
	return refs, nil
}

func putFile(ctx context.Context, st snaprepo.Store, c spooled) error {
	f, err := os.Open(c.file)
	if err != nil {
		return err
	}
	defer f.Close()
	return st.Put(ctx, blobPrefix+c.ref.Hash, f, c.ref.Size)
}

func (u *uploader) newChunks() *chunkWriter {
	return &chunkWriter{u: u}
}

// chunkWriter cuts an export into ~chunkSize ndjson files in the spool.
type chunkWriter struct {
	u      *uploader
	chunks []spooled
	f      *os.File
	w      *bufio.Writer
	h      hash.Hash
	cur    blobRef
	bytes  int64
	// live counts documents written, deleted deletes.
	live, deleted int64
	line          bytes.Buffer
}

type spooled struct {
	file string
	ref  blobRef
}

func (cw *chunkWriter) add(d shard.ExportDoc) error {
	cw.line.Reset()
	cw.line.WriteString(`{"_id":`)
	id, _ := json.Marshal(d.ID)
	cw.line.Write(id)
	cw.line.WriteString(`,"_version":`)
	cw.line.WriteString(strconv.FormatInt(d.Meta.Version, 10))
	if d.Meta.Routing != "" {
		r, _ := json.Marshal(d.Meta.Routing)
		cw.line.WriteString(`,"_routing":`)
		cw.line.Write(r)
	}
	if d.Deleted {
		cw.line.WriteString(`,"deleted":true}`)
		cw.deleted++
	} else {
		cw.line.WriteString(`,"_source":`)
		if err := json.Compact(&cw.line, d.Source); err != nil {
			return fmt.Errorf("document [%s] has a damaged source: %w", d.ID, err)
		}
		cw.line.WriteByte('}')
		cw.live++
	}
	cw.line.WriteByte('\n')
	if cw.f == nil {
		cw.u.n++
		f, err := os.Create(filepath.Join(cw.u.spool, strconv.Itoa(cw.u.n)))
		if err != nil {
			return err
		}
		cw.f, cw.w = f, bufio.NewWriterSize(f, 256<<10)
		cw.h = sha256.New()
		cw.cur = blobRef{}
	}
	if _, err := cw.w.Write(cw.line.Bytes()); err != nil {
		return err
	}
	cw.h.Write(cw.line.Bytes())
	cw.cur.Size += int64(cw.line.Len())
	cw.cur.Docs++
	if cw.cur.Size >= chunkSize {
		return cw.cut()
	}
	return nil
}

func (cw *chunkWriter) cut() error {
	if cw.f == nil {
		return nil
	}
	err := cw.w.Flush()
	if cerr := cw.f.Close(); err == nil {
		err = cerr
	}
	cw.cur.Hash = hex.EncodeToString(cw.h.Sum(nil))
	cw.chunks = append(cw.chunks, spooled{file: cw.f.Name(), ref: cw.cur})
	cw.bytes += cw.cur.Size
	cw.f, cw.w = nil, nil
	return err
}

func (cw *chunkWriter) close() error { return cw.cut() }

// discard removes the spooled files.
func (cw *chunkWriter) discard() error {
	if cw.f != nil {
		cw.f.Close()
		os.Remove(cw.f.Name())
		cw.f = nil
	}
	for _, c := range cw.chunks {
		os.Remove(c.file)
	}
	cw.chunks = nil
	return nil
}

// restoreIndex creates index target from im: the base, then each delta
// in order. A failure removes what was restored of it.
func (s *Server) restoreIndex(ctx context.Context, st snaprepo.Store, im *indexManifest, target string, withAliases bool) (err error) {
	var md indexMeta
	if err := readBlob(ctx, st, im.Meta, func(r io.Reader) error { return json.NewDecoder(r).Decode(&md) }); err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	var mp *mapping.Mapping
	if len(md.Mappings) > 0 && string(md.Mappings) != "null" {
		if mp, err = mapping.Parse(md.Mappings); err != nil {
			return fmt.Errorf("mapping: %w", err)
		}
	}
	if old := s.takeIndex(target); old != nil {
		if err := old.Delete(); err != nil {
			return err
		}
		if err := s.meta.IndexDeleted(target); err != nil {
			return err
		}
	}
	sh, _, err := s.createShard(target, mp, md.Settings)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			if sh := s.takeIndex(target); sh != nil {
				_ = sh.Delete()
			}
		}
	}()
	apply := func(refs []blobRef) error {
		for _, ref := range refs {
			if err := readBlob(ctx, st, ref, func(r io.Reader) error { return s.applyChunk(ctx, sh, r) }); err != nil {
				return err
			}
		}
		return nil
	}
	if err := apply(im.Base); err != nil {
		return err
	}
	for _, d := range im.Deltas {
		if err := apply(d); err != nil {
			return err
		}
	}
	if err := sh.Refresh(ctx); err != nil {
		return err
	}
	if withAliases && len(md.Aliases) > 0 {
		if err := s.meta.IndexCreated(target, md.Aliases, s.indexNames()); err != nil {
			s.log.Warn("restored index without its aliases", "index", target, "err", err)
		}
	}
	return nil
}

// readBlob streams a blob to fn, checking its hash.
func readBlob(ctx context.Context, st snaprepo.Store, ref blobRef, fn func(io.Reader) error) error {
	rc, err := st.Get(ctx, blobPrefix+ref.Hash)
	if err != nil {
		return err
	}
	defer rc.Close()
	h := sha256.New()
	if err := fn(io.TeeReader(rc, h)); err != nil {
		return fmt.Errorf("blob %s: %w", ref.Hash, err)
	}
	if _, err := io.Copy(h, rc); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != ref.Hash {
		return fmt.Errorf("blob %s is damaged (its content hashes to %s)", ref.Hash, got)
	}
	return nil
}

// applyChunk writes a chunk's documents (and deletes) in batches; on a
// primary they reach its in-sync copies like any write (not in a
// restore into a node that left its group: restoresHere).
func (s *Server) applyChunk(ctx context.Context, sh *shard.Shard, r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), MaxContentLength+1<<20)
	ops := make([]shard.Op, 0, 1000)
	flush := func() error {
		if len(ops) == 0 {
			return nil
		}
		var res []shard.Result
		var err error
		if restoresHere(ctx) {
			res, err = sh.Write(ctx, ops)
		} else {
			res, _, err = s.writeShard(ctx, sh, ops, "")
		}
		if err != nil {
			return err
		}
		for i, r := range res {
			if r.Err != nil {
				return fmt.Errorf("document [%s]: %w", ops[i].ID, r.Err)
			}
		}
		ops = ops[:0]
		return nil
	}
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		op, err := parseChunkLine(sc.Bytes())
		if err != nil {
			return err
		}
		ops = append(ops, op)
		if len(ops) == cap(ops) {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return flush()
}

// parseChunkLine reads one line of a document chunk into the write that
// restores it.
func parseChunkLine(b []byte) (shard.Op, error) {
	var l chunkLine
	if err := json.Unmarshal(b, &l); err != nil {
		return shard.Op{}, fmt.Errorf("damaged chunk line: %w", err)
	}
	if l.ID == "" {
		return shard.Op{}, errors.New("damaged chunk line: no _id")
	}
	if l.Deleted {
		return shard.Op{Kind: shard.OpDelete, ID: l.ID}, nil
	}
	if l.Version < 1 {
		return shard.Op{}, fmt.Errorf("damaged chunk line: document [%s] has _version %d", l.ID, l.Version)
	}
	if src := bytes.TrimSpace(l.Source); len(src) == 0 || src[0] != '{' {
		return shard.Op{}, fmt.Errorf("damaged chunk line: document [%s] has no _source object", l.ID)
	}
	return shard.Op{Kind: shard.OpIndex, ID: l.ID, Source: l.Source, Routing: l.Routing,
		Version: l.Version, VersionType: shard.VersionExternalGTE}, nil
}
