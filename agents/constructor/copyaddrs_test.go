package constructor

import (
	"testing"

	"paddock/engine"
)

// TestCopyAddrs: the addresses pushed for a deployment's copies go
// through the allocators' egress only when every copy's allocator runs
// Docker nodes with a peer egress and a tunnel is known (the status's,
// else the record's); any other mix keeps the aliases / status
// addresses for all copies.
func TestCopyAddrs(t *testing.T) {
	type alloc struct {
		runtime      string
		egress       bool
		recTunnel    string
		statusTunnel string
	}
	for _, tc := range []struct {
		name   string
		allocs [2]alloc
		want   [2]PushCopy
	}{
		{"both with egress", [2]alloc{{"docker", true, "h1:9400", "h1:9400"}, {"docker", true, "h2:9400", ""}},
			[2]PushCopy{{ID: "i1", URL: "http://i1.peer.paddock", Via: "h1:9400"}, {ID: "i2", URL: "http://i2.peer.paddock", Via: "h2:9400"}}},
		{"one without egress", [2]alloc{{"docker", true, "h1:9400", "h1:9400"}, {"docker", false, "h2:9400", "h2:9400"}},
			[2]PushCopy{{ID: "i1", URL: "http://paddock-i1:9200"}, {ID: "i2", URL: "http://paddock-i2:9200"}}},
		{"egress without a tunnel address", [2]alloc{{"docker", true, "", ""}, {"docker", true, "h2:9400", ""}},
			[2]PushCopy{{ID: "i1", URL: "http://paddock-i1:9200"}, {ID: "i2", URL: "http://paddock-i2:9200"}}},
		{"sim runtime", [2]alloc{{"sim", true, "h1:9400", "h1:9400"}, {"sim", true, "h2:9400", "h2:9400"}},
			[2]PushCopy{{ID: "i1", URL: "http://10.0.0.1:9200"}, {ID: "i2", URL: "http://10.0.0.2:9200"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(1)
			for i, a := range tc.allocs {
				id, iid := []string{"a1", "a2"}[i], []string{"i1", "i2"}[i]
				v := w.alloc(id)
				v.rec, v.hasRec = engine.Allocator{ID: id, Runtime: a.runtime, PeerEgress: a.egress, TunnelAddr: a.recTunnel}, true
				v.instances[iid] = engine.Instance{ID: iid, DeploymentID: "d1", Kind: engine.KindElasticsearch}
				v.statuses[iid] = engine.InstanceStatus{ID: iid, Address: []string{"10.0.0.1:9200", "10.0.0.2:9200"}[i], TunnelAddr: a.statusTunnel}
				w.dep("d1").instances[iid] = id
			}
			rp := newReplicator(&leader{w: w})
			got := rp.copyAddrs("d1", []string{"i1", "i2"})
			if len(got) != 2 || got[0] != tc.want[0] || got[1] != tc.want[1] {
				t.Fatalf("copy addresses %+v, want %+v", got, tc.want)
			}
		})
	}
}
