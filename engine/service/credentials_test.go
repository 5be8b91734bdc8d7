package service_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"paddock/engine"
	"paddock/engine/service"
	"paddock/engine/service/servicetest"
)

func TestCredentialsAtCreateAndReset(t *testing.T) {
	svc, p, ctx := newSvc(t, "zone-1")
	servicetest.AddAllocator(t, p, "a1", "zone-1", 4096)
	res, err := svc.CreateDeployment(ctx, service.CreateRequest{Name: "sec", RequestID: "sec-1", Spec: spec(1024, 1), Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	c := res.Credentials
	if c == nil || c.Username != "elastic" || len(c.Password) < 20 {
		t.Fatalf("credentials at create = %+v, want elastic and a password of at least 20 characters", c)
	}
	if strings.Contains(c.String(), c.Password) {
		t.Fatal("Credentials.String shows the password")
	}
	id := res.Deployment.ID
	var rec engine.DeploymentCredentials
	if _, err := p.Admin.GetJSON(ctx, engine.CredentialsPath(id), &rec); err != nil {
		t.Fatal(err)
	}
	if len(rec.Users) != 1 || bcrypt.CompareHashAndPassword([]byte(rec.Users[0].PasswordHash), []byte(c.Password)) != nil || rec.PlatformSecret == "" {
		t.Fatalf("stored credentials %+v do not hold the password's bcrypt hash and a platform secret", rec)
	}
	// Shown once: a replayed request id does not show it again.
	again, err := svc.CreateDeployment(ctx, service.CreateRequest{Name: "sec", RequestID: "sec-1", Spec: spec(1024, 1)})
	if err != nil || again.Credentials != nil {
		t.Fatalf("replay = %+v, %v: want no credentials", again.Credentials, err)
	}
	v, err := svc.GetDeployment(ctx, id)
	if err != nil || v.Security == nil || v.Security.PasswordReset {
		t.Fatalf("security before a reset = %+v, %v", v.Security, err)
	}

	r, err := svc.ResetPassword(ctx, id, "test")
	if err != nil {
		t.Fatal(err)
	}
	if r.Username != "elastic" || len(r.Password) < 20 || r.Password == c.Password {
		t.Fatalf("reset = %+v", r)
	}
	var after engine.DeploymentCredentials
	if _, err := p.Admin.GetJSON(ctx, engine.CredentialsPath(id), &after); err != nil {
		t.Fatal(err)
	}
	if len(after.Users) != 1 || bcrypt.CompareHashAndPassword([]byte(after.Users[0].PasswordHash), []byte(r.Password)) != nil ||
		after.PlatformSecret != rec.PlatformSecret || after.Resets != 1 {
		t.Fatalf("after reset %+v: want the new hash only, the same platform secret, one reset", after)
	}
	v, err = svc.GetDeployment(ctx, id)
	if err != nil || v.Security == nil || !v.Security.PasswordReset || v.Security.Resets != 1 || v.Security.ResetAt == nil {
		t.Fatalf("security after a reset = %+v, %v", v.Security, err)
	}
	if _, err := svc.ResetPassword(ctx, "0123456789abcdef0123456789abcdef", "test"); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("reset of an unknown deployment = %v, want not found", err)
	}

	// No clear password in any znode.
	assertNoSecretInTree(t, ctx, env.Super(t), c.Password, r.Password)
}

func assertNoSecretInTree(t *testing.T, ctx context.Context, su *engine.Store, secrets ...string) {
	t.Helper()
	var walk func(string)
	walk = func(p string) {
		data, _, err := su.Get(ctx, p)
		if err != nil {
			t.Fatalf("read %s: %v", p, err)
		}
		for _, s := range secrets {
			if strings.Contains(string(data), s) {
				t.Fatalf("znode %s holds a password in clear", p)
			}
		}
		kids, err := su.Children(ctx, p)
		if err != nil {
			t.Fatalf("children of %s: %v", p, err)
		}
		for _, k := range kids {
			walk(p + "/" + k)
		}
	}
	walk(engine.Root)
}
