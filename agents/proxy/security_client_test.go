package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/typedapi/types"
	"golang.org/x/crypto/bcrypt"

	"paddock/agents/node"
	"paddock/engine"
	"paddock/engine/testenv"
)

// TestOfficialClientThroughProxyWithSecurity: Elastic's Go client,
// configured with the elastic user's password or with an API key, works
// through the proxy against a node that enforces credentials;
// anonymous, wrong, invalidated and expired credentials get a 401.
func TestOfficialClientThroughProxyWithSecurity(t *testing.T) {
	const password = "Secur3-Deployment-Passw0rd"
	dir := t.TempDir()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := node.WriteSecurityFile(dir, node.SecurityFile{Users: []node.UserHash{{Username: "elastic", PasswordHash: string(h)}},
		Platform: node.PlatformCredential{Password: engine.RandomToken(24)}}); err != nil {
		t.Fatal(err)
	}
	n, err := node.NewServer(node.Config{Name: "n1", ClusterName: "dep1", DataDir: dir, RequireSecurity: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ns := httptest.NewServer(n)
	t.Cleanup(func() { ns.Close(); n.Close() })

	var accessLog syncBuffer
	p := startProxy(t, func(c *Config) { c.AccessLog = &accessLog })
	dep := engine.NewID()
	p.setTable(map[string]engine.Route{dep: liveRoute(dep, 1, esBackend("i1", "zone-1", "a1", ns.Listener.Addr().String()))}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	client := func(c elasticsearch.Config) *elasticsearch.TypedClient {
		c.Addresses = []string{"http://" + p.HTTPAddr()}
		c.Header = http.Header{"X-Found-Cluster": {dep}}
		es, err := elasticsearch.NewTypedClient(c)
		if err != nil {
			t.Fatal(err)
		}
		return es
	}
	status := func(err error) int {
		var e *types.ElasticsearchError
		if errors.As(err, &e) {
			return e.Status
		}
		return 0
	}

	basic := client(elasticsearch.Config{Username: "elastic", Password: password})
	if info, err := basic.Info().Do(ctx); err != nil || info.ClusterName != "dep1" {
		t.Fatalf("info with the elastic password through the proxy: %+v, %v", info, err)
	}
	me, err := basic.Security.Authenticate().Do(ctx)
	if err != nil || me.Username != "elastic" {
		t.Fatalf("_authenticate: %+v, %v", me, err)
	}
	key, err := basic.Security.CreateApiKey().Name("app").Do(ctx)
	if err != nil {
		t.Fatalf("create API key: %v", err)
	}
	withKey := client(elasticsearch.Config{APIKey: key.Encoded})
	if _, err := withKey.Index("logs").Id("1").Document(map[string]any{"msg": "hello"}).Do(ctx); err != nil {
		t.Fatalf("index with the API key through the proxy: %v", err)
	}
	if got, err := withKey.Get("logs", "1").Do(ctx); err != nil || !got.Found {
		t.Fatalf("get with the API key: %+v, %v", got, err)
	}
	expiring, err := basic.Security.CreateApiKey().Name("short").Expiration("1ms").Do(ctx)
	if err != nil {
		t.Fatalf("create an expiring key: %v", err)
	}
	if expiring.Expiration == nil {
		t.Fatal("the expiring key has no expiration")
	}
	// Wait out the millisecond (a condition on the key's own expiry).
	testenv.Eventually(t, 5*time.Second, "the key's expiry", func() bool { return time.Now().UnixMilli() > *expiring.Expiration })
	if _, err := basic.Security.InvalidateApiKey().Ids(key.Id).Do(ctx); err != nil {
		t.Fatalf("invalidate: %v", err)
	}

	for name, es := range map[string]*elasticsearch.TypedClient{
		"anonymous":      client(elasticsearch.Config{}),
		"wrong password": client(elasticsearch.Config{Username: "elastic", Password: "not-the-password"}),
		"revoked key":    withKey,
		"expired key":    client(elasticsearch.Config{APIKey: expiring.Encoded}),
	} {
		_, err := es.Info().Do(ctx)
		if status(err) != http.StatusUnauthorized {
			t.Errorf("%s: info = %v, want a 401", name, err)
		}
		if err != nil && strings.Contains(err.Error(), password) {
			t.Errorf("%s: the error shows the password", name)
		}
	}

	// Neither the access log nor the metrics show a credential.
	fams, err := p.cfg.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var metrics strings.Builder
	for _, mf := range fams {
		metrics.WriteString(mf.String())
	}
	logged := fmt.Sprint(accessLog.lines())
	if !strings.Contains(logged, "/_security/api_key") || metrics.Len() == 0 {
		t.Fatalf("no access log or metrics to check (log %d bytes, metrics %d)", len(logged), metrics.Len())
	}
	for _, secret := range []string{password, key.ApiKey, key.Encoded, expiring.Encoded} {
		if strings.Contains(logged, secret) || strings.Contains(metrics.String(), secret) {
			t.Fatal("the proxy's access log or metrics show a credential")
		}
	}
}
