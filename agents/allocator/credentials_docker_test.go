package allocator_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"

	"paddock/agents/allocator"
	"paddock/engine"
	"paddock/engine/testenv"
)

// TestNodeCredentials: a node of a deployment with credentials starts
// with them (its allocator probes it as the platform), refuses
// anonymous and wrong credentials, takes the elastic password, and
// takes a new password within seconds of a reset.
func TestNodeCredentials(t *testing.T) {
	cli := needDocker(t)
	p := env.Fresh(t, "zone-1")
	needImages(t, cli)
	label := testLabel(t)
	testenv.CleanupDocker(t, cli, allocator.LabelTest, label)
	cons := p.Connect(t, engine.RoleConstructor)
	ctx := ctxT(t, 3*time.Minute)

	dep := engine.NewID()
	pw1, u1, err := engine.NewSuperUser()
	if err != nil {
		t.Fatal(err)
	}
	rec := engine.DeploymentCredentials{Users: []engine.CredentialUser{u1}, PlatformSecret: engine.RandomToken(24), CreatedAt: time.Now().UTC()}
	if err := p.Admin.EnsurePath(ctx, engine.PathCredentials); err != nil {
		t.Fatal(err)
	}
	if err := p.Admin.Create(ctx, engine.CredentialsPath(dep), rec); err != nil {
		t.Fatal(err)
	}
	id := "t-" + engine.RandomToken(4)
	start(t, p, env.Servers(), dockerAllocator(t, id, label, t.TempDir()))
	in := engine.Instance{ID: "i-" + engine.RandomToken(4), DeploymentID: dep, Kind: engine.KindElasticsearch, Version: "8.17.0", SizeMB: 256}
	assign(t, cons, id, in)
	// Healthy means the allocator's probe passed: as the platform.
	st := waitStatus(t, cons, id, in.ID, 90*time.Second, "running and healthy", runningHealthy)

	get := func(user, pass string) int {
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+st.Address+"/", nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := get("", ""); c != 401 {
		t.Fatalf("anonymous = %d, want 401", c)
	}
	if c := get("elastic", "wrong-password-000000"); c != 401 {
		t.Fatalf("wrong password = %d, want 401", c)
	}
	if c := get("elastic", pw1); c != 200 {
		t.Fatalf("elastic = %d, want 200", c)
	}

	// Reset: the allocator hands the node the new hash.
	pw2, u2, _ := engine.NewSuperUser()
	rec.Users, rec.Resets = []engine.CredentialUser{u2}, 1
	if _, err := p.Admin.Set(ctx, engine.CredentialsPath(dep), rec, engine.AnyVersion); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the new password to work", func() (bool, string) {
		c := get("elastic", pw2)
		return c == 200, "new password answered " + http.StatusText(c)
	})
	if c := get("elastic", pw1); c != 401 {
		t.Fatalf("old password after reset = %d, want 401", c)
	}
	// Container logs never show a password.
	logs := containerLogs(t, cli, allocator.ContainerName(id, in.ID))
	for _, pw := range []string{pw1, pw2, rec.PlatformSecret} {
		if strings.Contains(logs, pw) {
			t.Fatal("the node's log shows a password")
		}
	}
}

func containerLogs(t *testing.T, cli *client.Client, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rc, err := cli.ContainerLogs(ctx, name, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatalf("logs of %s: %v", name, err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	return string(b)
}
