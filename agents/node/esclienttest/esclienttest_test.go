package esclienttest_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8"

	"paddock/agents/node"
	"paddock/agents/node/esclienttest"
)

// TestGoClientAgainstANode: the official client's whole sequence against
// a node on a free port (the testscripts run it through the proxy of a
// real deployment).
func TestGoClientAgainstANode(t *testing.T) {
	s, err := node.NewServer(node.Config{Name: "n1", ClusterName: "dep1", Version: "8.19.0", DataDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(func() { ts.Close(); s.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := esclienttest.Run(ctx, elasticsearch.Config{Addresses: []string{ts.URL}}, esclienttest.Options{Log: t.Logf}); err != nil {
		t.Fatal(err)
	}
}
