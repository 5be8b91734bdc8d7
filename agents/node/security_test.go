package node

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"paddock/agents/node/eserr"
	"paddock/engine/testenv"
)

const (
	testPassword = "correct-horse-battery-staple"
	testPlatform = "platform-secret-0123456789abcdef"
)

func testSecurityFile(t testing.TB, password string) SecurityFile {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return SecurityFile{Users: []UserHash{{Username: "elastic", PasswordHash: string(h)}},
		Platform: PlatformCredential{Password: testPlatform}}
}

// newSecureNode runs a node whose data directory holds credentials.
func newSecureNode(t testing.TB, require bool, withFile bool) (*Server, *httptest.Server, string) {
	t.Helper()
	dir := t.TempDir()
	if withFile {
		if err := WriteSecurityFile(dir, testSecurityFile(t, testPassword)); err != nil {
			t.Fatal(err)
		}
	}
	s, err := NewServer(Config{Name: "n1", ClusterName: "dep1", DataDir: dir, RequireSecurity: require, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(func() {
		ts.Close()
		s.Close()
	})
	return s, ts, dir
}

type authCall struct {
	method, path, body string
	auth               string // Authorization header ("" none)
	header             map[string]string
}

func doAuth(t testing.TB, base string, c authCall) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(c.method, base+c.path, strings.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, resp.Header, m
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func TestSecurityAuthentication(t *testing.T) {
	s, ts, _ := newSecureNode(t, true, true)
	elastic := basic("elastic", testPassword)

	// An API key to use, one to invalidate and one already expired.
	_, _, created := doAuth(t, ts.URL, authCall{method: "POST", path: "/_security/api_key", auth: elastic, body: `{"name":"ingest","expiration":"1d"}`})
	good := "ApiKey " + created["encoded"].(string)
	_, _, revokedKey := doAuth(t, ts.URL, authCall{method: "POST", path: "/_security/api_key", auth: elastic, body: `{"name":"old"}`})
	revoked := "ApiKey " + revokedKey["encoded"].(string)
	if code, _, _ := doAuth(t, ts.URL, authCall{method: "GET", path: "/", auth: revoked}); code != 200 {
		t.Fatalf("fresh key refused: %d", code)
	}
	if code, _, m := doAuth(t, ts.URL, authCall{method: "DELETE", path: "/_security/api_key", auth: elastic, body: `{"ids":["` + revokedKey["id"].(string) + `"]}`}); code != 200 ||
		len(m["invalidated_api_keys"].([]any)) != 1 {
		t.Fatalf("invalidate = %d %v", code, m)
	}
	hash, _ := bcrypt.GenerateFromPassword([]byte("expired-secret"), bcrypt.MinCost)
	past := time.Now().Add(-time.Hour)
	if err := s.keys.put(apiKey{ID: "expiredid", Name: "gone", Hash: string(hash), Creation: past.Add(-time.Hour).UnixMilli(),
		Expiration: past.UnixMilli(), Username: "elastic", Realm: realmReserved}); err != nil {
		t.Fatal(err)
	}
	expired := "ApiKey " + base64.StdEncoding.EncodeToString([]byte("expiredid:expired-secret"))

	cases := []struct {
		name   string
		call   authCall
		want   int
		reason string
	}{
		{"anonymous", authCall{method: "GET", path: "/"}, 401, "missing authentication credentials for REST request [/]"},
		{"wrong password", authCall{method: "GET", path: "/", auth: basic("elastic", "nope")}, 401, "unable to authenticate user [elastic]"},
		{"unknown user", authCall{method: "GET", path: "/", auth: basic("bob", testPassword)}, 401, "unable to authenticate user [bob]"},
		{"garbage basic", authCall{method: "GET", path: "/", auth: "Basic !!!"}, 401, "invalid basic authentication"},
		{"bearer", authCall{method: "GET", path: "/", auth: "Bearer abc"}, 401, "use Basic or ApiKey"},
		{"revoked key", authCall{method: "GET", path: "/", auth: revoked}, 401, "invalidated"},
		{"expired key", authCall{method: "GET", path: "/", auth: expired}, 401, "expired"},
		{"wrong key secret", authCall{method: "GET", path: "/", auth: "ApiKey " + base64.StdEncoding.EncodeToString([]byte(created["id"].(string)+":x"))}, 401, "unable to authenticate"},
		{"platform with customer password", authCall{method: "GET", path: "/", auth: basic(PlatformUser, testPassword)}, 401, "unable to authenticate user [_paddock]"},
		{"right password", authCall{method: "GET", path: "/", auth: elastic}, 200, ""},
		{"right password again (cached)", authCall{method: "PUT", path: "/logs", auth: elastic}, 200, ""},
		{"api key", authCall{method: "GET", path: "/logs/_count", auth: good}, 200, ""},
		{"platform identity", authCall{method: "GET", path: HealthPath, auth: basic(PlatformUser, testPlatform)}, 200, ""},
		{"customer on health", authCall{method: "GET", path: HealthPath, auth: elastic}, 200, ""},
		{"customer on platform path", authCall{method: "GET", path: "/_paddock/replication", auth: elastic}, 403, "reserved to the platform"},
		{"platform on platform path", authCall{method: "GET", path: "/_paddock/replication", auth: basic(PlatformUser, testPlatform)}, 200, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, h, m := doAuth(t, ts.URL, c.call)
			if code != c.want {
				t.Fatalf("%s %s = %d, want %d: %v", c.call.method, c.call.path, code, c.want, m)
			}
			if c.want == 401 {
				if got := h.Values("WWW-Authenticate"); len(got) == 0 || got[0] != `Basic realm="security" charset="UTF-8"` {
					t.Errorf("WWW-Authenticate = %q", got)
				}
				e, _ := m["error"].(map[string]any)
				if e["type"] != "security_exception" || m["status"] != float64(401) {
					t.Errorf("body = %v, want a security_exception with status 401", m)
				}
			}
			if c.reason != "" {
				e, _ := m["error"].(map[string]any)
				if r, _ := e["reason"].(string); !strings.Contains(r, c.reason) {
					t.Errorf("reason %q, want it to contain %q", r, c.reason)
				}
				if strings.Contains(toJSON(m), testPassword) || strings.Contains(toJSON(m), testPlatform) {
					t.Errorf("an error shows a password: %v", m)
				}
			}
		})
	}
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestSecurityAuthenticateAndKeys(t *testing.T) {
	_, ts, _ := newSecureNode(t, true, true)
	elastic := basic("elastic", testPassword)
	_, _, me := doAuth(t, ts.URL, authCall{method: "GET", path: "/_security/_authenticate", auth: elastic})
	if me["username"] != "elastic" || me["authentication_type"] != "realm" {
		t.Fatalf("_authenticate as elastic = %v", me)
	}
	code, _, k := doAuth(t, ts.URL, authCall{method: "PUT", path: "/_security/api_key", auth: elastic, body: `{"name":"app-1","expiration":"2h","metadata":{"team":"a"}}`})
	if code != 200 || k["api_key"] == nil || k["expiration"] == nil {
		t.Fatalf("create = %d %v", code, k)
	}
	_, _, me = doAuth(t, ts.URL, authCall{method: "GET", path: "/_security/_authenticate", auth: "ApiKey " + k["encoded"].(string)})
	if me["authentication_type"] != "api_key" || me["username"] != "elastic" || me["api_key"].(map[string]any)["name"] != "app-1" {
		t.Fatalf("_authenticate with the key = %v", me)
	}
	for _, c := range []struct {
		path string
		want int
		n    int
	}{
		{"/_security/api_key", 200, 1},
		{"/_security/api_key?name=app-*", 200, 1},
		{"/_security/api_key?name=other", 200, 0},
		{"/_security/api_key?id=" + k["id"].(string), 200, 1},
		{"/_security/api_key?id=nope", 404, 0},
	} {
		code, _, m := doAuth(t, ts.URL, authCall{method: "GET", path: c.path, auth: elastic})
		if code != c.want {
			t.Fatalf("GET %s = %d, want %d: %v", c.path, code, c.want, m)
		}
		if keys, _ := m["api_keys"].([]any); code == 200 && len(keys) != c.n {
			t.Fatalf("GET %s = %d keys, want %d", c.path, len(keys), c.n)
		}
		if strings.Contains(toJSON(m), k["api_key"].(string)) || strings.Contains(toJSON(m), "$2a$") {
			t.Fatalf("GET %s shows a key secret or hash: %v", c.path, m)
		}
	}
	bad := []struct{ method, body, reason string }{
		{"POST", `{}`, "api key name is required"},
		{"POST", `{"name":"x","expiration":"soon"}`, "failed to parse setting [expiration]"},
		{"DELETE", `{}`, "must be specified"},
	}
	for _, b := range bad {
		code, _, m := doAuth(t, ts.URL, authCall{method: b.method, path: "/_security/api_key", auth: elastic, body: b.body})
		e, _ := m["error"].(map[string]any)
		if r, _ := e["reason"].(string); code != 400 || !strings.Contains(r, b.reason) {
			t.Fatalf("%s %s = %d %v, want 400 with %q", b.method, b.body, code, m, b.reason)
		}
	}
	// Invalidating by name twice: the second time it was already.
	_, _, m := doAuth(t, ts.URL, authCall{method: "DELETE", path: "/_security/api_key", auth: elastic, body: `{"name":"app-1"}`})
	_, _, m2 := doAuth(t, ts.URL, authCall{method: "DELETE", path: "/_security/api_key", auth: elastic, body: `{"name":"app-1"}`})
	if len(m["invalidated_api_keys"].([]any)) != 1 || len(m2["previously_invalidated_api_keys"].([]any)) != 1 {
		t.Fatalf("invalidate twice = %v then %v", m, m2)
	}
}

func TestSecurityFileLifecycle(t *testing.T) {
	s, ts, dir := newSecureNode(t, true, false)
	// Required but not delivered yet: refused.
	if code, _, m := doAuth(t, ts.URL, authCall{method: "GET", path: "/", auth: basic("elastic", testPassword)}); code != 401 ||
		!strings.Contains(toJSON(m), "has not received") {
		t.Fatalf("before the file: %d %v", code, m)
	}
	if err := WriteSecurityFile(dir, testSecurityFile(t, testPassword)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() bool {
		code, _, _ := doAuth(t, ts.URL, authCall{method: "GET", path: "/", auth: basic("elastic", testPassword)})
		return code == 200
	}, "the node to read its new credentials file")
	// A new password replaces the old one (cached or not).
	if err := WriteSecurityFile(dir, testSecurityFile(t, "the-new-password-1234")); err != nil {
		t.Fatal(err)
	}
	if err := s.sec.refresh(true); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := doAuth(t, ts.URL, authCall{method: "GET", path: "/", auth: basic("elastic", testPassword)}); code != 401 {
		t.Fatalf("old password after a reset = %d, want 401", code)
	}
	if code, _, _ := doAuth(t, ts.URL, authCall{method: "GET", path: "/", auth: basic("elastic", "the-new-password-1234")}); code != 200 {
		t.Fatalf("new password = %d, want 200", code)
	}
	// A half-written or damaged file keeps the credentials in force.
	if err := os.WriteFile(filepath.Join(dir, SecurityFileName), []byte(`{"users":[{"user`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.sec.refresh(true); err != nil {
		t.Fatalf("refresh over a damaged file: %v", err)
	}
	if code, _, _ := doAuth(t, ts.URL, authCall{method: "GET", path: "/", auth: basic("elastic", "the-new-password-1234")}); code != 200 {
		t.Fatalf("password after a damaged file = %d, want 200", code)
	}
	// Without the requirement and without a file, a node is open (local
	// development, other agents' in-process tests).
	_, open, _ := newSecureNode(t, false, false)
	if code, _, _ := doAuth(t, open.URL, authCall{method: "GET", path: "/"}); code != 200 {
		t.Fatalf("open node = %d", code)
	}
}

func TestSecurityReplicationUsesPlatformIdentity(t *testing.T) {
	_, tsA, _ := newSecureNode(t, true, true)
	_, tsB, _ := newSecureNode(t, true, true)
	platform := basic(PlatformUser, testPlatform)
	for _, self := range []string{"a", "b"} {
		url := tsA.URL
		if self == "b" {
			url = tsB.URL
		}
		body := `{"term":1,"version":1,"self":"` + self + `","primary":"a","copies":[{"id":"a","url":"` + tsA.URL + `"},{"id":"b","url":"` + tsB.URL + `"}],"in_sync":["a","b"]}`
		if code, _, m := doAuth(t, url, authCall{method: "PUT", path: "/_paddock/replication", auth: platform, body: body}); code != 200 {
			t.Fatalf("routing push = %d %v", code, m)
		}
	}
	elastic := basic("elastic", testPassword)
	_, _, k := doAuth(t, tsA.URL, authCall{method: "POST", path: "/_security/api_key", auth: elastic, body: `{"name":"shared"}`})
	key := "ApiKey " + k["encoded"].(string)
	if code, _, m := doAuth(t, tsB.URL, authCall{method: "GET", path: "/", auth: key}); code != 200 {
		t.Fatalf("key created on the primary refused on its replica: %d %v", code, m)
	}
	// Written through the replica: forwarded to the primary with the
	// key, replicated back with the platform identity.
	if code, _, _ := doAuth(t, tsB.URL, authCall{method: "PUT", path: "/docs/_doc/1", auth: key, body: `{"a":1}`}); code != 201 {
		t.Fatalf("write = %d", code)
	}
	if code, _, _ := doAuth(t, tsB.URL, authCall{method: "GET", path: "/docs/_doc/1", auth: key}); code != 200 {
		t.Fatalf("replicated document = %d, want 200", code)
	}
	doAuth(t, tsA.URL, authCall{method: "DELETE", path: "/_security/api_key", auth: elastic, body: `{"ids":["` + k["id"].(string) + `"]}`})
	if code, _, _ := doAuth(t, tsB.URL, authCall{method: "GET", path: "/", auth: key}); code != 401 {
		t.Fatalf("key invalidated on the primary still works on its replica: %d", code)
	}
	// A customer cannot call the copies' endpoints.
	if code, _, _ := doAuth(t, tsB.URL, authCall{method: "POST", path: "/_paddock/replication/ops", auth: elastic, body: `{}`}); code != 403 {
		t.Fatalf("customer on the ops endpoint = %d, want 403", code)
	}
}

func waitFor(t testing.TB, d time.Duration, ok func() bool, what string) {
	t.Helper()
	testenv.Eventually(t, d, what, ok)
}

// BenchmarkAuthCached is the per-request cost of authentication after
// the first request of a credential (the slow hash is cached).
func BenchmarkAuthCached(b *testing.B) {
	s, _, _ := newSecureNode(b, true, true)
	elastic := basic("elastic", testPassword)
	k := apiKey{ID: "benchkey", Name: "bench", Creation: time.Now().UnixMilli(), Username: "elastic", Realm: realmReserved}
	h, _ := bcrypt.GenerateFromPassword([]byte("bench-secret"), bcrypt.DefaultCost)
	k.Hash = string(h)
	if err := s.keys.put(k); err != nil {
		b.Fatal(err)
	}
	key := "ApiKey " + base64.StdEncoding.EncodeToString([]byte("benchkey:bench-secret"))
	for _, c := range []struct{ name, auth string }{{"basic", elastic}, {"api_key", key}} {
		b.Run(c.name, func(b *testing.B) {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Authorization", c.auth)
			if _, err := s.sec.authenticate(r); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := s.sec.authenticate(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAuthFirst is the cost of a credential's first request: the
// bcrypt check (cost 10, as the platform hashes passwords).
func BenchmarkAuthFirst(b *testing.B) {
	dir := b.TempDir()
	h, _ := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.DefaultCost)
	if err := WriteSecurityFile(dir, SecurityFile{Users: []UserHash{{Username: "elastic", PasswordHash: string(h)}}}); err != nil {
		b.Fatal(err)
	}
	s, err := NewServer(Config{Name: "n1", DataDir: dir, RequireSecurity: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", basic("elastic", testPassword))
	for b.Loop() {
		s.sec.forget()
		if _, err := s.sec.authenticate(r); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzAuthorization: no Authorization value panics the node, and none
// but the right credentials authenticates.
func FuzzAuthorization(f *testing.F) {
	for _, seed := range []string{basic("elastic", testPassword), basic("elastic", "x"), "Basic", "Basic ", "ApiKey", "ApiKey Og==",
		"ApiKey " + base64.StdEncoding.EncodeToString([]byte(":")), "Bearer x", basic(PlatformUser, testPlatform), "basic !!", " "} {
		f.Add(seed)
	}
	s, _, _ := newSecureNode(f, true, true)
	f.Fuzz(func(t *testing.T, h string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header["Authorization"] = []string{h}
		p, err := s.sec.authenticate(r)
		if err != nil {
			if e := eserr.From(err); e.Status != http.StatusUnauthorized {
				t.Fatalf("Authorization %q: %v, want a 401", h, err)
			}
			return
		}
		_, cred, _ := strings.Cut(h, " ")
		raw, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
		if got := string(raw); got != "elastic:"+testPassword && got != PlatformUser+":"+testPlatform {
			t.Fatalf("Authorization %q authenticated as %+v", h, p)
		}
	})
}
