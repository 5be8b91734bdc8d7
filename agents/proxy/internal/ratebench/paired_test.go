package main

import (
	"bytes"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestParseTarget(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want target
		bad  bool
	}{
		{in: "direct=127.0.0.1:80", want: target{"direct", "127.0.0.1:80", "localhost"}},
		{in: "paddock=127.0.0.1:9200/abc.localhost", want: target{"paddock", "127.0.0.1:9200", "abc.localhost"}},
		{in: "127.0.0.1:80", bad: true},
		{in: "x=", bad: true},
		{in: "x=nohostport", bad: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseTarget(tc.in)
			if tc.bad {
				if err == nil {
					t.Fatalf("accepted %q as %+v", tc.in, got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestDiffsPairByScheduledInstant(t *testing.T) {
	ms := time.Millisecond
	r := &pairedResult{lat: [][]time.Duration{
		{1 * ms, 2 * ms, failed, notMeasured, 5 * ms},
		{3 * ms, 2 * ms, 9 * ms, 9 * ms, 4 * ms},
	}}
	got := r.diffs(1)
	want := []time.Duration{-1 * ms, 0, 2 * ms} // instants 2 and 3 have no reference
	if len(got) != len(want) {
		t.Fatalf("diffs %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("diffs %v, want %v", got, want)
		}
	}
}

// TestPairedShowsAddedDelay: a target that answers 3 ms later than the
// reference shows about 3 ms added per pair, whatever the machine's load
// does to both.
func TestPairedShowsAddedDelay(t *testing.T) {
	serve := func(delay time.Duration) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(delay)
			w.Write([]byte("ok"))
		})}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		return ln.Addr().String()
	}
	fast, slow := serve(0), serve(3*time.Millisecond)
	var out bytes.Buffer
	ts := []target{{"direct", fast, "a"}, {"slow", slow, "a"}}
	res := measurePaired(ts, "/", 200, 4, 200*time.Millisecond, time.Second)
	if err := res.report(&out, time.Second); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + out.String())
	d := res.diffs(1)
	if len(d) < 100 {
		t.Fatalf("only %d pairs", len(d))
	}
	// The noise of the two sides cancels in the median; 2 ms leaves room
	// for a skewed sample on a loaded machine.
	if p50 := d[len(d)/2]; p50 < 2*time.Millisecond || p50 > 50*time.Millisecond {
		t.Fatalf("median added %v, want about the 3ms the slow target sleeps", p50)
	}
	if !strings.Contains(out.String(), "added to direct") {
		t.Fatalf("report lacks the differences:\n%s", out.String())
	}
}
