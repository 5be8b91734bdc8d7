package tunnel

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"paddock/agents/agentkit"
	"paddock/stunnel"
)

// TestStunnelConf: a tunnel end renders as the stunnel service doing
// the same, with absolute file names; what cannot be rendered is the
// operator's to correct.
func TestStunnelConf(t *testing.T) {
	t.Parallel()
	abs, err := filepath.Abs("pki/p.crt")
	if err != nil {
		t.Fatal(err)
	}
	files := Files{Cert: "pki/p.crt", Key: "pki/p.key", CA: "pki/ca.pem"}
	opts := stunnel.Options{Name: "zk"}
	for _, tc := range []struct {
		name   string
		end    Config
		files  Files
		allow  []string
		want   []string // lines of the output; nil: a ConfigError
		reason string
	}{
		{name: "server", end: Config{Mode: "server", Listen: ":2191", Target: "127.0.0.1:2181", Options: opts}, files: files,
			allow: []string{"role:proxy"}, want: []string{"[zk]", "client = no", "connect = 127.0.0.1:2181", "cert = " + abs}},
		{name: "client", end: Config{Mode: "client", Listen: "127.0.0.1:2181", Connect: "d:2191", SNI: "d", Options: opts}, files: files,
			allow: []string{"*"}, want: []string{"client = yes", "connect = d:2191", "sni = d"}},
		{name: "unknown mode", end: Config{Mode: "both", Options: opts}, files: files, allow: []string{"*"}, reason: "--mode"},
		{name: "malformed allow", end: Config{Mode: "server", Listen: ":1", Target: "t:1", Options: opts}, files: files, allow: []string{"team:x"}, reason: "team:x"},
		{name: "no key", end: Config{Mode: "server", Listen: ":1", Target: "t:1", Options: opts}, files: Files{Cert: "c", CA: "ca"}, allow: []string{"*"}, reason: "cert, key and CA"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := StunnelConf(tc.end, tc.files, tc.allow, false)
			if tc.want == nil {
				var ce *agentkit.ConfigError
				if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.reason) {
					t.Fatalf("err = %v, want a ConfigError saying %q", err, tc.reason)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains("\n"+out, "\n"+w+"\n") {
					t.Errorf("no line %q in:\n%s", w, out)
				}
			}
		})
	}
}
