package agentkit

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// TestHealthBodyIsJSON: check messages with quotes, control characters
// and non-ASCII survive as JSON (Go's %q escapes are not JSON's).
func TestHealthBodyIsJSON(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		checks map[string]string
	}{
		{"ok", map[string]string{"zookeeper": ""}},
		{"quotes and newline", map[string]string{"zookeeper": "cannot connect: \"x\"\nretrying"}},
		{"control and non-ASCII", map[string]string{"docker": "\x01 bad \u00e9\u2028"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, err := json.Marshal(healthBody("degraded", tc.checks))
			if err != nil {
				t.Fatal(err)
			}
			var got struct {
				Status string
				Checks map[string]string
			}
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("not JSON: %v: %s", err, b)
			}
			for k, v := range tc.checks {
				if want := orOK(v); got.Checks[k] != want {
					t.Errorf("check %s = %q, want %q", k, got.Checks[k], want)
				}
			}
		})
	}
}

func TestBindSettings(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(good, []byte("zk: from-file:2181\napi-url: http://file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("zk: [unclosed\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name            string
		args            []string
		env             map[string]string
		wantZK, wantAPI string
		wantConfigError bool
	}{
		{name: "file under the state dir", args: []string{"--state-dir", dir}, wantZK: "from-file:2181", wantAPI: "http://file"},
		{name: "environment beats the file", args: []string{"--state-dir", dir}, env: map[string]string{"PADDOCK_ZK": "from-env:2181"}, wantZK: "from-env:2181", wantAPI: "http://file"},
		{name: "flag beats the environment", args: []string{"--state-dir", dir, "--zk", "from-flag:2181"}, env: map[string]string{"PADDOCK_ZK": "from-env:2181"}, wantZK: "from-flag:2181", wantAPI: "http://file"},
		{name: "no file: defaults", args: []string{"--state-dir", t.TempDir()}, wantZK: "default:2181", wantAPI: ""},
		{name: "a file that does not parse", args: []string{"--config", bad}, wantConfigError: true},
		{name: "an explicit file that is missing", args: []string{"--config", filepath.Join(dir, "nope.yaml")}, wantConfigError: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
			fs.String("config", "", "")
			fs.String("state-dir", "", "")
			fs.String("zk", "default:2181", "")
			fs.String("api-url", "", "")
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			v := viper.New()
			err := BindSettings(v, fs)
			var ce *ConfigError
			if tt.wantConfigError {
				if !errors.As(err, &ce) {
					t.Fatalf("error %v, want a ConfigError", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if v.GetString("zk") != tt.wantZK || v.GetString("api-url") != tt.wantAPI {
				t.Fatalf("zk %q api-url %q, want %q %q", v.GetString("zk"), v.GetString("api-url"), tt.wantZK, tt.wantAPI)
			}
		})
	}
}
