package node

import (
	"bytes"
	"context"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestCLI(t *testing.T) {
	_, ts := newTestNode(t, t.TempDir(), "", "")
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := closed.Addr().String()
	closed.Close()
	liveAddr := strings.TrimPrefix(ts.URL, "http://")
	unhealthy := httptest.NewServer(nil) // 404 everywhere
	defer unhealthy.Close()
	for _, tc := range []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
	}{
		{"healthcheck ok", []string{"healthcheck", "--url", ts.URL + HealthPath}, 0, "healthy"},
		{"healthcheck down", []string{"healthcheck", "--url", "http://" + deadAddr + HealthPath}, 1, "unhealthy"},
		{"healthcheck 404", []string{"healthcheck", "--url", unhealthy.URL + HealthPath}, 1, "404"},
		{"dial reachable", []string{"dial", liveAddr}, 0, "reachable"},
		{"dial unreachable", []string{"dial", deadAddr}, 1, "unreachable"},
		{"dial expect unreachable", []string{"dial", "--expect-unreachable", deadAddr, "unix:///nonexistent.sock"}, 0, "unreachable"},
		{"dial expect unreachable but reachable", []string{"dial", "--expect-unreachable", liveAddr}, 1, "1 of 1 addresses are reachable"},
		{"dial nothing", []string{"dial"}, 2, "Usage"},
		{"bad flag", []string{"--frobnicate"}, 2, "frobnicate"},
		{"bad kind", []string{"--kind", "logstash", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0"}, 1, "unknown node kind"},
		{"bad log level", []string{"--log-level", "loud", "--data-dir", t.TempDir()}, 2, "log-level"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			code := Main(context.Background(), tc.args, &out, &out)
			if code != tc.wantCode || !strings.Contains(out.String(), tc.wantOut) {
				t.Fatalf("Main(%v) = %d %q, want %d containing %q", tc.args, code, out.String(), tc.wantCode, tc.wantOut)
			}
		})
	}
	t.Run("serve until cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan int)
		var out bytes.Buffer
		go func() { done <- Main(ctx, []string{"--listen", "127.0.0.1:0", "--data-dir", t.TempDir()}, &out, &out) }()
		cancel()
		if code := <-done; code != 0 {
			t.Fatalf("serve returned %d: %s", code, out.String())
		}
	})
}
