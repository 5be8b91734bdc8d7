package node

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"paddock/agents/node/shard"
	"paddock/engine/testenv"
)

// TestReplicationBatchesWaitingWrites: while a call to a copy is in
// flight, the writes that arrive wait and go in the next call, all of
// them, their operations in seq_no order with the highest global
// checkpoint; each write gets the result of the call that carried it.
func TestReplicationBatchesWaitingWrites(t *testing.T) {
	tests := []struct {
		name    string
		status  int // the copy's answer to the second call
		synced  bool
		wantErr bool
	}{
		{"in-sync copy accepts", http.StatusOK, true, false},
		{"copy out of in_sync gets no checkpoint", http.StatusOK, false, false},
		{"copy refuses: every carried write fails", http.StatusBadRequest, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			first, release := make(chan struct{}), make(chan struct{})
			var mu sync.Mutex
			var calls []opsRequest
			copySrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var req opsRequest
				if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
					t.Errorf("copy got a bad body: %v", err)
				}
				mu.Lock()
				calls = append(calls, req)
				n := len(calls)
				mu.Unlock()
				if n == 1 {
					close(first)
					<-release
				}
				if n > 1 && tc.status != http.StatusOK {
					w.WriteHeader(tc.status)
					return
				}
				_, _ = w.Write([]byte(`{"local_checkpoint":1}`))
			}))
			defer copySrv.Close()

			s, err := NewServer(Config{Name: "p", ClusterName: "dep1", DataDir: t.TempDir(), Logger: testLogger("p")})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			s.repl.sendTimeout = 300 * time.Millisecond
			ct := &copyTrack{id: "r"}
			u := copySrv.URL
			ct.url.Store(&u)
			k := batchKey{index: "logs", term: 3, synced: tc.synced, refresh: "wait_for"}
			op := func(seq int64) []shard.ReplicaOp {
				return []shard.ReplicaOp{{Op: "index", ID: "d", SeqNo: seq, PrimaryTerm: 3, Version: 1, Source: json.RawMessage(`{}`)}}
			}
			ctx := context.Background()

			firstErr := make(chan error, 1)
			go func() { firstErr <- s.sendBatched(ctx, ct, k, 0, op(0)) }()
			<-first
			const waiting = 20
			errs := make(chan error, waiting)
			for i := waiting; i >= 1; i-- { // out of seq_no order
				go func(seq int64) { errs <- s.sendBatched(ctx, ct, k, seq, op(seq)) }(int64(i))
			}
			testenv.Eventually(t, 5*time.Second, "the writes queued behind the call in flight", func() bool {
				ct.batches.mu.Lock()
				defer ct.batches.mu.Unlock()
				q := ct.batches.q[k]
				return q != nil && len(q.pending) == waiting
			})
			close(release)
			if err := <-firstErr; err != nil {
				t.Fatalf("first write: %v", err)
			}
			for range waiting {
				if err := <-errs; (err != nil) != tc.wantErr {
					t.Fatalf("queued write: err = %v, want error: %v", err, tc.wantErr)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if !tc.wantErr && len(calls) != 2 {
				t.Fatalf("the copy got %d calls, want 2 (one in flight, one for the %d writes that waited)", len(calls), waiting)
			}
			second := calls[1]
			if len(second.Ops) != waiting {
				t.Fatalf("second call carried %d operations, want %d", len(second.Ops), waiting)
			}
			for i, o := range second.Ops {
				if o.SeqNo != int64(i+1) {
					t.Fatalf("operation %d has seq_no %d: not in seq_no order", i, o.SeqNo)
				}
			}
			wantGCP := int64(-1)
			if tc.synced {
				wantGCP = waiting
			}
			if second.GlobalCheckpoint != wantGCP || second.Term != 3 || second.Refresh != "wait_for" || second.Index != "logs" {
				t.Fatalf("second call = term %d index %s refresh %s gcp %d, want term 3 index logs refresh wait_for gcp %d",
					second.Term, second.Index, second.Refresh, second.GlobalCheckpoint, wantGCP)
			}
			ct.batches.mu.Lock()
			left := len(ct.batches.q)
			ct.batches.mu.Unlock()
			if left != 0 {
				t.Fatalf("%d queues left after every write was sent", left)
			}
		})
	}
}
