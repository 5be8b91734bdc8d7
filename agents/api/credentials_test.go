package api

import (
	"strings"
	"testing"

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
