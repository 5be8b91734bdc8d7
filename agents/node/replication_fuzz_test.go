package node

import (
	"encoding/json"
	"testing"
)

// FuzzDecodeOps: the ops decoder never panics, and what it accepts is
// valid and survives a round trip.
func FuzzDecodeOps(f *testing.F) {
	f.Add([]byte(`{"term":3,"index":"logs","global_checkpoint":4,"refresh":"true","ops":[{"seq_no":5,"primary_term":3,"op":"index","id":"1","version":2,"source":{"a":1}}]}`))
	f.Add([]byte(`{"term":1,"index":"logs","ops":[{"seq_no":0,"primary_term":1,"op":"delete","id":"x","version":1}]}`))
	f.Add([]byte(`{"term":0,"index":"_bad","ops":[{"op":"upsert"}]}`))
	f.Add([]byte(`{"term":1,"index":"logs","ops":[{"seq_no":-1,"primary_term":1,"op":"index","id":"","version":0,"source":null}]} trailing`))
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := decodeOps(b)
		if err != nil {
			return
		}
		if req.Term < 1 {
			t.Fatalf("accepted term %d", req.Term)
		}
		for _, o := range req.Ops {
			if o.Validate() != nil || o.ID == "" || o.SeqNo < 0 {
				t.Fatalf("accepted an invalid op %+v", o)
			}
		}
		again, _ := json.Marshal(req)
		if _, err := decodeOps(again); err != nil {
			t.Fatalf("re-encoded request refused: %v\n%s", err, again)
		}
	})
}
