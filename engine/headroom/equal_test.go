package headroom

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/charmbracelet/x/exp/golden"

	"paddock/engine"
)

// The reports of two small fleets (the benchmark's generator, 450
// deployments on 48 allocators, nearly full, and on 56) under each
// strategy, kept as golden
// file: a change that makes the dry-run faster must not change a single
// verdict. Refresh with -update only for a change meant to alter them.
func TestReportGolden(t *testing.T) {
	for _, n := range []int{48, 56} {
		in := benchInput(t, n, 450)
		for _, strategy := range []string{engine.StrategyFillAntiAffinity, engine.StrategyFill, engine.StrategyDistribute} {
			t.Run(fmt.Sprintf("%d-%s", n, strategy), func(t *testing.T) {
				in.Strategy = strategy
				out, err := json.MarshalIndent(Compute(in), "", " ")
				if err != nil {
					t.Fatal(err)
				}
				golden.RequireEqual(t, out)
			})
		}
	}
}

// The workers answer independent questions each on its own state: the
// report is the same for any number of them.
func TestReportSameForAnyWorkers(t *testing.T) {
	in := benchInput(t, 48, 450)
	one, err := json.Marshal(compute(in, 1))
	if err != nil {
		t.Fatal(err)
	}
	for _, workers := range []int{2, 3, 4, 8} {
		t.Run(fmt.Sprint(workers), func(t *testing.T) {
			got, err := json.Marshal(compute(in, workers))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(one) {
				t.Fatalf("%d workers: the report differs from one worker's", workers)
			}
		})
	}
}
