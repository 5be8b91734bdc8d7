package testenv

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func TestWait(t *testing.T) {
	tests := []struct {
		name     string
		d        time.Duration
		holdsAt  int // the call at which cond first holds; 0: never
		wantOK   bool
		wantLast string
	}{
		{"holds at once", time.Second, 1, true, "call 1"},
		{"holds on the third look", 5 * time.Second, 3, true, "call 3"},
		{"never holds", 50 * time.Millisecond, 0, false, "call"},
		{"zero duration looks once", 0, 0, false, "call 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			last, ok := Wait(tt.d, func() (bool, string) {
				calls++
				return calls == tt.holdsAt, fmt.Sprintf("call %d", calls)
			})
			if ok != tt.wantOK {
				t.Fatalf("ok = %v after %d calls, want %v", ok, calls, tt.wantOK)
			}
			if tt.wantLast == "call" {
				if calls < 2 {
					t.Fatalf("looked %d times in %s, want at least 2", calls, tt.d)
				}
			} else if last != tt.wantLast {
				t.Fatalf("last = %q, want %q", last, tt.wantLast)
			}
		})
	}
}

func TestPause(t *testing.T) {
	if !Pause(context.Background(), time.Millisecond) {
		t.Fatal("Pause with a live context returned early")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if Pause(ctx, time.Hour) {
		t.Fatal("Pause with a done context waited the whole hour")
	}
}
