package api

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"paddock/engine/service"
	"paddock/engine/service/servicetest"
)

func TestCredentialsEndpoints(t *testing.T) {
	f := newFixture(t, "zone-1")
	servicetest.AddAllocator(t, f.p, "a1", "zone-1", 4096)
	created := f.want(f.do(admin, "POST", "/deployments", createBody("sec", 1024, 1)), 201)
	var cr service.CreateResult
	created.decode(t, &cr)
	if cr.Credentials == nil || cr.Credentials.Username != "elastic" || len(cr.Credentials.Password) < 20 {
		t.Fatalf("create answer credentials = %+v", cr.Credentials)
	}
	id := cr.Deployment.ID
	for _, path := range []string{"/deployments/" + id, "/deployments/" + id + "/activity", "/deployments"} {
		a := f.want(f.do(admin, "GET", path, nil), 200)
		if strings.Contains(string(a.body), cr.Credentials.Password) {
			t.Fatalf("GET %s shows the password", path)
		}
	}
	var dv service.DeploymentView
	f.want(f.do(admin, "GET", "/deployments/"+id, nil), 200).decode(t, &dv)
	if dv.Security == nil || dv.Security.PasswordReset {
		t.Fatalf("security before reset = %+v", dv.Security)
	}
	var rp service.ResetPasswordResult
	f.want(f.do(admin, "POST", "/deployments/"+id+"/elasticsearch/main-elasticsearch/_reset-password", nil), 200).decode(t, &rp)
	if rp.Username != "elastic" || len(rp.Password) < 20 || rp.Password == cr.Credentials.Password {
		t.Fatalf("reset answer = %+v", rp)
	}
	var act service.Activity
	f.want(f.do(admin, "GET", "/deployments/"+id+"/activity", nil), 200).decode(t, &act)
	if act.Security == nil || !act.Security.PasswordReset {
		t.Fatalf("activity security after reset = %+v", act.Security)
	}
	eb := f.want(f.do(admin, "POST", "/deployments/"+id+"/elasticsearch/kibana/_reset-password", nil), 404).errBody(t)
	if !strings.Contains(eb.Errors[0].Message, "main-elasticsearch") {
		t.Fatalf("unknown ref: %+v", eb)
	}
}

// TestNoPasswordInLogsOrMetrics: after a create and a reset through the
// API (debug logging on), neither the log nor the metrics show a
// password.
func TestNoPasswordInLogsOrMetrics(t *testing.T) {
	f := newFixture(t, "zone-1")
	servicetest.AddAllocator(t, f.p, "a1", "zone-1", 4096)
	var logBuf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	svc := service.New(f.p.Admin, service.WithLogger(log))
	reg := prometheus.NewRegistry()
	h, err := NewHandler(svc, log, reg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	f.url = srv.URL

	var cr service.CreateResult
	f.want(f.do(admin, "POST", "/deployments", createBody("quiet", 1024, 1)), 201).decode(t, &cr)
	var rp service.ResetPasswordResult
	f.want(f.do(admin, "POST", "/deployments/"+cr.Deployment.ID+"/elasticsearch/main-elasticsearch/_reset-password", nil), 200).decode(t, &rp)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var metrics strings.Builder
	for _, mf := range fams {
		fmt.Fprintln(&metrics, mf.String())
	}
	if logBuf.Len() == 0 || metrics.Len() == 0 {
		t.Fatal("nothing logged or measured: the check below would prove nothing")
	}
	for _, pw := range []string{cr.Credentials.Password, rp.Password} {
		if strings.Contains(logBuf.String(), pw) {
			t.Fatal("the API log shows a password")
		}
		if strings.Contains(metrics.String(), pw) {
			t.Fatal("the API metrics show a password")
		}
	}
}
