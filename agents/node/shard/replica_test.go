package shard

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
)

func idx(seq int64, id, src string) ReplicaOp {
	return ReplicaOp{SeqNo: seq, PrimaryTerm: 1, Op: "index", ID: id, Version: seq + 1, Source: json.RawMessage(src)}
}

func del(seq int64, id string) ReplicaOp {
	return ReplicaOp{SeqNo: seq, PrimaryTerm: 1, Op: "delete", ID: id, Version: seq + 1}
}

// TestApplyReplicaOrderFree: any order, duplicates included, leaves the
// same documents (an op applies only above the document's seq_no, a
// tombstone's included).
func TestApplyReplicaOrderFree(t *testing.T) {
	cases := []struct {
		name string
		ops  []ReplicaOp
		want map[string]string // id → source; absent: deleted or never
	}{
		{"overwrite", []ReplicaOp{idx(0, "a", `{"v":0}`), idx(1, "a", `{"v":1}`)}, map[string]string{"a": `{"v":1}`}},
		{"delete after index", []ReplicaOp{idx(0, "a", `{"v":0}`), del(1, "a")}, map[string]string{}},
		{"index after delete", []ReplicaOp{idx(0, "a", `{"v":0}`), del(1, "a"), idx(2, "a", `{"v":2}`)}, map[string]string{"a": `{"v":2}`}},
		{"several ids", []ReplicaOp{idx(0, "a", `{"v":0}`), idx(1, "b", `{"v":1}`), del(2, "a"), idx(3, "c", `{"v":3}`), idx(4, "b", `{"v":4}`)},
			map[string]string{"b": `{"v":4}`, "c": `{"v":3}`}},
	}
	for _, c := range cases {
		for trial := range 8 {
			s, _ := testShard(t, -1)
			ops := append([]ReplicaOp(nil), c.ops...)
			if trial > 0 {
				rng := rand.New(rand.NewPCG(uint64(trial), 0))
				ops = append(ops, ops[rng.IntN(len(ops))]) // a duplicate
				rng.Shuffle(len(ops), func(i, j int) { ops[i], ops[j] = ops[j], ops[i] })
			}
			// One op per request, as live writes and recovery interleave.
			for _, o := range ops {
				if _, err := s.ApplyReplica(context.Background(), []ReplicaOp{o}, -1); err != nil {
					t.Fatalf("%s: %v", c.name, err)
				}
			}
			for _, id := range []string{"a", "b", "c"} {
				src, meta, ok, err := s.Get(id)
				want, wantOK := c.want[id]
				if err != nil || ok != wantOK || ok && string(src) != want {
					t.Fatalf("%s (trial %d, order %v): %s = %s %v, want %s %v", c.name, trial, ops, id, src, ok, want, wantOK)
				}
				if ok && meta.Version != meta.SeqNo+1 {
					t.Fatalf("%s: %s kept version %d for seq_no %d: want the primary's", c.name, id, meta.Version, meta.SeqNo)
				}
			}
			cp := s.Checkpoint()
			if cp.MaxSeqNo != int64(len(c.ops)-1) || cp.LastOpTerm != 1 {
				t.Fatalf("%s: checkpoint %+v", c.name, cp)
			}
			s.Close()
		}
	}
}

// TestReplicaSeqNoAndRecoverySources: a copy's seq_no follows what it
// received (a promoted copy writes above it), OpsSince gives each
// document's latest state once, ExportChunk pages documents and
// tombstones, AdvanceSeqNo steps past a seq_no.
func TestReplicaSeqNoAndRecoverySources(t *testing.T) {
	s, _ := testShard(t, -1)
	ctx := context.Background()
	ops := []ReplicaOp{idx(0, "a", `{"v":0}`), idx(1, "b", `{"v":1}`), idx(2, "a", `{"v":2}`), del(3, "b"), idx(4, "c", `{"v":4}`)}
	if _, err := s.ApplyReplica(ctx, ops, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.SetTerm(3); err != nil {
		t.Fatal(err)
	}
	r := write1(t, s, Op{Kind: OpIndex, ID: "d", Source: []byte(`{"v":5}`)})
	if r.SeqNo != 5 || r.PrimaryTerm != 3 {
		t.Fatalf("promoted copy wrote seq_no %d term %d, want 5 and 3", r.SeqNo, r.PrimaryTerm)
	}
	got, next, covered, err := s.OpsSince(1, 100)
	if err != nil || !covered || next != 6 {
		t.Fatalf("OpsSince = next %d covered %v err %v", next, covered, err)
	}
	var seqs []int64
	for _, o := range got {
		seqs = append(seqs, o.SeqNo)
	}
	if want := []int64{2, 3, 4, 5}; len(seqs) != len(want) || seqs[0] != 2 || seqs[1] != 3 || seqs[3] != 5 {
		t.Fatalf("OpsSince(1) seq_nos %v, want %v (seq 1 superseded by the delete at 3)", seqs, want)
	}
	if got[1].Op != "delete" || got[1].ID != "b" {
		t.Fatalf("OpsSince(1)[1] = %+v, want the delete of b", got[1])
	}
	var ids []string
	for _, tombs := range []bool{false, true} {
		after := ""
		for {
			page, last, done, err := s.ExportChunk(tombs, after, 2)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range page {
				ids = append(ids, o.Op+":"+o.ID)
			}
			if done {
				break
			}
			after = last
		}
	}
	if want := "index:a index:c index:d delete:b"; strings.Join(ids, " ") != want {
		t.Fatalf("ExportChunk gave %s, want %s", strings.Join(ids, " "), want)
	}
	if err := s.AdvanceSeqNo(20); err != nil {
		t.Fatal(err)
	}
	if r := write1(t, s, Op{Kind: OpIndex, ID: "e", Source: []byte(`{}`)}); r.SeqNo != 21 {
		t.Fatalf("after AdvanceSeqNo(20) the next seq_no is %d, want 21", r.SeqNo)
	}
	if _, err := s.ApplyReplica(ctx, []ReplicaOp{{SeqNo: 1, PrimaryTerm: 1, Op: "upsert", ID: "x", Version: 1}}, -1); err == nil {
		t.Fatal("an unknown op kind was applied")
	}
}
