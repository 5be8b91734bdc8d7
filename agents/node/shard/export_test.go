package shard

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func exportIDs(t *testing.T, s *Shard, since int64) (ExportInfo, string) {
	t.Helper()
	var out []string
	info, err := s.Export(since, func(d ExportDoc) error {
		if d.Deleted {
			out = append(out, "-"+d.ID)
		} else {
			out = append(out, fmt.Sprintf("%s@%d:%s", d.ID, d.Meta.Version, d.Source))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return info, strings.Join(out, " ")
}

// TestExport: a full export is every live document; an export since a
// seq_no is each document written or deleted after it, once, in its
// latest state, through the op log or (after a reopen trimmed it) by
// scanning documents and tombstones.
func TestExport(t *testing.T) {
	s, _ := testShard(t, -1)
	for _, op := range []Op{
		{Kind: OpIndex, ID: "a", Source: []byte(`{"v":1}`)},
		{Kind: OpIndex, ID: "b", Source: []byte(`{"v":1}`)},
		{Kind: OpIndex, ID: "c", Source: []byte(`{"v":1}`)}, // seq_no 2
		{Kind: OpIndex, ID: "a", Source: []byte(`{"v":2}`)},
		{Kind: OpDelete, ID: "b"},
		{Kind: OpIndex, ID: "d", Source: []byte(`{"v":1}`)},
		{Kind: OpIndex, ID: "d", Source: []byte(`{"v":2}`)}, // seq_no 6
	} {
		write1(t, s, op)
	}
	for _, tc := range []struct {
		name  string
		since int64
		want  string
	}{
		{"full", -1, `a@2:{"v":2} c@1:{"v":1} d@2:{"v":2}`},
		{"since 2", 2, `-b a@2:{"v":2} d@2:{"v":2}`},
		{"since 4", 4, `d@2:{"v":2}`},
		{"since max", 6, ``},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info, got := exportIDs(t, s, tc.since)
			if got != tc.want {
				t.Fatalf("export since %d = %q, want %q", tc.since, got, tc.want)
			}
			if info.MaxSeqNo != 6 || info.ResumeSeqNo != 6 || info.Docs != 3 {
				t.Fatalf("info = %+v, want max seq_no 6, 3 docs", info)
			}
			if tc.since >= 0 && tc.since < 6 && !info.FromOpLog {
				t.Fatal("the op log holds the range but was not used")
			}
		})
	}
	// Without the op log's start (trimmed after a reopen), the same
	// answer comes from scanning documents and tombstones.
	if err := s.db.Update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOps).Cursor()
		for k, _ := c.First(); k != nil && geti64(k) <= 3; k, _ = c.First() {
			if err := c.Delete(); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	info, got := exportIDs(t, s, 2)
	if want := `-b a@2:{"v":2} d@2:{"v":2}`; got != want || info.FromOpLog {
		t.Fatalf("without the op log: %q (op log %v), want %q by scan", got, info.FromOpLog, want)
	}
}
