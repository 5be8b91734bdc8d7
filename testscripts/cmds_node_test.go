package testscripts

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/rogpeppe/go-internal/testscript"

	"paddock/agents/node/esclienttest"
)

func init() {
	commands["esclient"] = cmdESClient
}

// esclient [-cacert FILE] [-connect HOST:PORT] [-user NAME:PASSWORD] URL: Elastic's official
// Go client runs an application's sequence (esclienttest.Run) against
// URL, printing a line per step. -cacert trusts that CA for https URLs;
// -connect dials that address whatever URL's host (so
// http://<id>.localhost:PORT works without a resolver for *.localhost,
// while the Host header and SNI stay the deployment's).
func cmdESClient(ts *testscript.TestScript, neg bool, args []string) {
	var caFile, connect, user string
	for len(args) > 1 {
		switch args[0] {
		case "-user":
			user, args = args[1], args[2:]
		case "-cacert":
			caFile, args = args[1], args[2:]
		case "-connect":
			connect, args = args[1], args[2:]
		default:
			ts.Fatalf("usage: esclient [-cacert FILE] [-connect HOST:PORT] [-user NAME:PASSWORD] URL")
		}
	}
	if len(args) != 1 {
		ts.Fatalf("usage: esclient [-cacert FILE] [-connect HOST:PORT] URL")
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12}}
	if caFile != "" {
		pem, err := os.ReadFile(ts.MkAbs(caFile))
		ts.Check(err)
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			ts.Fatalf("no certificate in %s", caFile)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	if connect != "" {
		tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, network, connect)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	name, pass, _ := strings.Cut(user, ":")
	err := esclienttest.Run(ctx, elasticsearch.Config{Addresses: []string{args[0]}, Transport: tr, Username: name, Password: pass},
		esclienttest.Options{Log: func(format string, a ...any) { ts.Logf(format, a...) }})
	if neg {
		if err == nil {
			ts.Fatalf("the client's sequence passed")
		}
		return
	}
	if err != nil {
		ts.Fatalf("the client's sequence: %v", err)
	}
}
