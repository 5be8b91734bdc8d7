package platform

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"paddock/agents/director"
	"paddock/engine"
)

// TestSummaryOutput: `paddock status` shows the ensemble only when the
// servers run as one, in text and JSON alike.
func TestSummaryOutput(t *testing.T) {
	t.Parallel()
	base := engine.PlatformSummary{ZooKeeper: "127.0.0.1:2181", AllocatorsTotal: 2, AllocatorsAlive: 1,
		Zones: []engine.ZoneSummary{{Name: "zone-1", Allocators: 2, AllocatorsAlive: 1, CapacityMB: 2048}}}
	ens := &director.EnsembleStatus{Voters: 3, Up: 3, Leader: 2, Quorum: true,
		Members: []director.EnsembleMember{{ZKServer: director.ZKServer{ID: 2, Role: "participant", Client: "127.0.0.1:2182"}, Mode: "leader"}}}
	for _, tc := range []struct {
		name     string
		ensemble *director.EnsembleStatus
		want     bool
	}{
		{"standalone", nil, false},
		{"ensemble", ens, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sum := Summary{PlatformSummary: base, Ensemble: tc.ensemble}
			var text bytes.Buffer
			sum.WriteText(&text)
			if !strings.Contains(text.String(), "Allocators   1/2 alive") || !strings.Contains(text.String(), "zone-1") {
				t.Errorf("text misses the allocators or the zone:\n%s", text.String())
			}
			if got := strings.Contains(text.String(), "ensemble: 3 voters, 3 up, leader 2, quorum yes"); got != tc.want {
				t.Errorf("ensemble line shown %v, want %v:\n%s", got, tc.want, text.String())
			}
			b, err := json.Marshal(sum)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			if _, got := m["ensemble"]; got != tc.want || m["zookeeper"] != "127.0.0.1:2181" {
				t.Errorf("JSON %s: ensemble present %v, want %v, with the summary's fields inline", b, got, tc.want)
			}
		})
	}
}
