package constructor

import (
	"testing"

	"paddock/engine"
)

// TestBackendOf: a status with the allocator's tunnel address routes
// through the tunnel (TLS); without one, to the node's plain address.
func TestBackendOf(t *testing.T) {
	in := engine.PlacedInstance{ID: "i-1", Kind: engine.KindElasticsearch, Allocator: "a-1", Zone: "zone-1"}
	cases := []struct {
		name string
		st   engine.InstanceStatus
		want engine.Backend
	}{
		{"plain", engine.InstanceStatus{Address: "127.0.0.1:32768"},
			engine.Backend{InstanceID: "i-1", Kind: engine.KindElasticsearch, Allocator: "a-1", Zone: "zone-1", Address: "127.0.0.1:32768"}},
		{"tunnel", engine.InstanceStatus{Address: "127.0.0.1:32768", TunnelAddr: "10.0.0.5:9400"},
			engine.Backend{InstanceID: "i-1", Kind: engine.KindElasticsearch, Allocator: "a-1", Zone: "zone-1", Address: "10.0.0.5:9400", TLS: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := backendOf(in, c.st); got != c.want {
				t.Fatalf("backendOf = %+v, want %+v", got, c.want)
			}
		})
	}
}
