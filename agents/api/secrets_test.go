package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"paddock/engine"
	"paddock/engine/service"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSecretsNeverLogged: with debug logging on, creating, using,
// mistyping and revoking keys and passwords leaves no secret in the log
// or in ZooKeeper.
func TestSecretsNeverLogged(t *testing.T) {
	p := env.Fresh(t, "zone-1")
	var logBuf syncBuf
	log := slog.New(slog.NewJSONHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	svc := service.New(p.Admin, service.WithLogger(log))
	h, err := NewHandler(svc, log, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, adminKey, err := svc.CreateAPIKey(ctx, "boot", service.RolePlatformAdmin)
	if err != nil {
		t.Fatal(err)
	}
	const password = "hunter2-hunter2"
	if err := svc.SetUser(ctx, "ops", service.RolePlatformViewer, password, "test"); err != nil {
		t.Fatal(err)
	}
	call := func(method, path, auth, body string) *http.Response {
		req, _ := http.NewRequestWithContext(ctx, method, srv.URL+Prefix+path, strings.NewReader(body))
		req.Header.Set("Authorization", auth)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := call("POST", "/users/auth/keys", "ApiKey "+adminKey, `{"name":"ci","role":"platform-viewer"}`)
	var ck CreateKeyResponse
	_ = json.NewDecoder(resp.Body).Decode(&ck)
	resp.Body.Close()
	secrets := []string{strings.SplitN(adminKey, ".", 2)[1], strings.SplitN(ck.Key, ".", 2)[1], password}
	wrong := strings.SplitN(ck.Key, ".", 2)[0] + "." + strings.Repeat("f", 48)
	for _, auth := range []string{"ApiKey " + ck.Key, "ApiKey " + wrong, "ApiKey " + adminKey,
		"Basic " + base64.StdEncoding.EncodeToString([]byte("ops:"+password)),
		"Basic " + base64.StdEncoding.EncodeToString([]byte("ops:not-"+password))} {
		call("GET", "/deployments", auth, "").Body.Close()
		call("POST", "/deployments", auth, `{"name":"x"}`).Body.Close()
	}
	call("DELETE", "/users/auth/keys/"+ck.ID, "ApiKey "+adminKey, "").Body.Close()
	secrets = append(secrets, strings.Repeat("f", 48))
	out := logBuf.String()
	if !strings.Contains(out, `"msg":"request"`) {
		t.Fatalf("debug request log missing: %s", out)
	}
	var stored strings.Builder
	kids, _ := p.Admin.Children(ctx, engine.PathAPIKeys)
	for _, k := range kids {
		b, _, _ := p.Admin.Get(ctx, engine.APIKeyPath(k))
		stored.Write(b)
	}
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("secret %q… found in the log", s[:4])
		}
		if strings.Contains(stored.String(), s) {
			t.Errorf("secret %q… stored in clear", s[:4])
		}
	}
}
