package client

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"paddock/engine/service"
)

func TestCredentialsText(t *testing.T) {
	var b bytes.Buffer
	WriteCreateResult(&b, service.CreateResult{Created: true, PlanID: "p1", Deployment: service.DeploymentView{},
		Credentials: &service.Credentials{Username: "elastic", Password: "S3cretS3cretS3cretS3cret"}}, false, "")
	for _, want := range []string{"username: elastic", "password: S3cretS3cretS3cretS3cret", "shown once"} {
		if !strings.Contains(b.String(), want) {
			t.Fatalf("create text %q lacks %q", b.String(), want)
		}
	}
	at := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	cases := []struct {
		s    *service.SecurityView
		want string
	}{
		{nil, "-"},
		{&service.SecurityView{Username: "elastic"}, "elastic, set at creation, never reset"},
		{&service.SecurityView{Username: "elastic", PasswordReset: true, Resets: 2, ResetAt: &at}, "elastic, reset 2 time(s), last "},
	}
	for _, c := range cases {
		if got := PasswordState(c.s); !strings.HasPrefix(got, c.want) {
			t.Errorf("PasswordState(%+v) = %q, want %q…", c.s, got, c.want)
		}
	}
}
