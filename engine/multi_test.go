package engine_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"paddock/engine"
)

func TestMultiResultsAndFailedOp(t *testing.T) {
	p := env.Fresh(t)
	ctx := ctxT(t, 20*time.Second)
	s := p.Admin
	d := engine.DeploymentPath("m")
	res, err := s.MultiResults(ctx, engine.OpCreate(d, "a"), engine.OpSet(d, "b", 0), engine.OpCreate(engine.PlansPath("m"), nil),
		engine.OpCreateSequential(engine.PlansPath("m")+"/h-", "x"))
	if err != nil {
		t.Fatal(err)
	}
	if res[1].Version != 1 || res[0].Path != d || !strings.HasPrefix(res[3].Path, engine.PlansPath("m")+"/h-0") {
		t.Fatalf("results %+v: want the set at version 1 and the sequential node's name", res)
	}
	tests := []struct {
		name  string
		ops   []engine.Op
		index int
		kind  error
	}{
		{"stale version", []engine.Op{engine.OpCheck(d, 1), engine.OpSet(d, "c", 0)}, 1, engine.ErrConflict},
		{"missing check", []engine.Op{engine.OpCheck(engine.DeploymentPath("gone"), engine.AnyVersion)}, 0, engine.ErrNotFound},
		{"exists", []engine.Op{engine.OpSet(d, "c", 1), engine.OpCreate(d, "again")}, 1, engine.ErrExists},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Multi(ctx, tt.ops...)
			i, ok := engine.FailedOp(err)
			if !ok || i != tt.index || !errors.Is(err, tt.kind) {
				t.Fatalf("err %v: failed op %d (%v), want %d and %v", err, i, ok, tt.index, tt.kind)
			}
		})
	}
	if b, _, _ := s.Get(ctx, d); string(b) != `b` {
		t.Fatalf("a failed multi changed %s to %q", d, b)
	}
}
