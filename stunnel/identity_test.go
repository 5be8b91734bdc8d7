package stunnel

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestIdentityOf(t *testing.T) {
	u := func(s string) *url.URL { v, _ := url.Parse(s); return v }
	cases := []struct {
		name    string
		cert    *x509.Certificate
		want    Identity
		wantErr bool
	}{
		{"uri san", &x509.Certificate{URIs: []*url.URL{u("paddock://role/proxy/p1")}}, Identity{"proxy", "p1"}, false},
		{"uri san wins over subject", &x509.Certificate{URIs: []*url.URL{u("paddock://role/allocator/a1")},
			Subject: pkix.Name{CommonName: "x", OrganizationalUnit: []string{"proxy"}}}, Identity{"allocator", "a1"}, false},
		{"foreign uri ignored, subject used", &x509.Certificate{URIs: []*url.URL{u("spiffe://example.org/x")},
			Subject: pkix.Name{CommonName: "d1", OrganizationalUnit: []string{"director"}}}, Identity{"director", "d1"}, false},
		{"malformed paddock uri", &x509.Certificate{URIs: []*url.URL{u("paddock://role/proxy")}}, Identity{}, true},
		{"nothing", &x509.Certificate{Subject: pkix.Name{CommonName: "alone"}}, Identity{}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := IdentityOf(tc.cert)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("IdentityOf = %v, %v; want %v (error %v)", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestIssuedCertificateCarriesIdentity(t *testing.T) {
	ca, _, err := NewCA("ca", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	key, _, _ := GenerateKey()
	pemCert, err := ca.Issue(key.Public(), Leaf{Identity: Identity{"allocator", "a-7"}, TTL: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	certs, _ := ParseCerts(pemCert)
	id, err := IdentityOf(certs[0])
	if err != nil || id != (Identity{"allocator", "a-7"}) {
		t.Fatalf("identity = %v, %v", id, err)
	}
	if got := certs[0].NotAfter.Sub(certs[0].NotBefore); got > 16*time.Minute {
		t.Errorf("lifetime %s, want about 10m (short-lived)", got)
	}
	if err := certs[0].VerifyHostname(RoleDNSName("allocator")); err != nil {
		t.Errorf("role DNS SAN missing (stunnel checkHost needs it): %v", err)
	}
}

func TestParseAllow(t *testing.T) {
	cases := []struct {
		specs   []string
		admit   []Identity
		refuse  []Identity
		wantErr bool
	}{
		{specs: []string{"proxy"}, admit: []Identity{{"proxy", "p1"}}, refuse: []Identity{{"allocator", "a1"}}},
		{specs: []string{"role:proxy,role:allocator"}, admit: []Identity{{"proxy", "p"}, {"allocator", "a"}}, refuse: []Identity{{"director", "d"}}},
		{specs: []string{"id:proxy/p1"}, admit: []Identity{{"proxy", "p1"}}, refuse: []Identity{{"proxy", "p2"}}},
		{specs: []string{"*"}, admit: []Identity{{"anything", "x"}}},
		{specs: []string{"id:p1"}, wantErr: true},
		{specs: []string{"cn:x"}, wantErr: true},
		{specs: nil, refuse: []Identity{{"proxy", "p1"}}},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.specs, ";"), func(t *testing.T) {
			a, err := ParseAllow(tc.specs)
			if (err != nil) != tc.wantErr {
				t.Fatalf("ParseAllow err = %v, want error %v", err, tc.wantErr)
			}
			for _, id := range tc.admit {
				if !a.Admits(id) {
					t.Errorf("%s refused, want admitted by %s", id, a)
				}
			}
			for _, id := range tc.refuse {
				if a.Admits(id) {
					t.Errorf("%s admitted, want refused by %s", id, a)
				}
			}
		})
	}
}

func TestRenderConf(t *testing.T) {
	svc := ConfService{Name: "zk", Accept: "127.0.0.1:2191", Connect: "127.0.0.1:2181", CertFile: "c", KeyFile: "k", CAFile: "ca",
		Allow: Allow{Roles: []string{"proxy", "allocator"}, IDs: []string{"admin/ops"}}, IdleTimeout: time.Minute}
	cases := []struct {
		name    string
		svc     ConfService
		want    []string
		absent  []string
		wantErr bool
	}{
		{name: "server", svc: svc, want: []string{"[zk]", "client = no", "requireCert = yes", "verifyChain = yes",
			"checkHost = allocator.role.paddock", "checkHost = proxy.role.paddock", "checkHost = ops.admin.id.paddock", "TIMEOUTidle = 60"}},
		{name: "client with sni", svc: func() ConfService { s := svc; s.Client = true; s.SNI = "zookeeper"; return s }(),
			want: []string{"client = yes", "sni = zookeeper"}, absent: []string{"requireCert"}},
		{name: "any peer renders no checkHost", svc: func() ConfService { s := svc; s.Allow = Allow{AnyPeer: true}; return s }(),
			absent: []string{"checkHost"}},
		{name: "no CA", svc: func() ConfService { s := svc; s.CAFile = ""; return s }(), wantErr: true},
		{name: "empty allow", svc: func() ConfService { s := svc; s.Allow = Allow{}; return s }(), wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := RenderConf(ConfGlobal{Foreground: true}, tc.svc)
			if (err != nil) != tc.wantErr {
				t.Fatalf("RenderConf err = %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w+"\n") {
					t.Errorf("missing %q in:\n%s", w, out)
				}
			}
			for _, a := range tc.absent {
				if strings.Contains(out, a) {
					t.Errorf("unexpected %q in:\n%s", a, out)
				}
			}
		})
	}
}

func TestIssueDropsSpoofedIdentityNames(t *testing.T) {
	ca, _, _ := NewCA("ca", time.Hour)
	key, _, _ := GenerateKey()
	pemCert, err := ca.Issue(key.Public(), Leaf{Identity: Identity{"allocator", "a1"}, DNSNames: []string{"proxy.role.paddock", "x.proxy.ID.paddock", "host.example"}})
	if err != nil {
		t.Fatal(err)
	}
	certs, _ := ParseCerts(pemCert)
	for _, bad := range []string{"proxy.role.paddock", "x.proxy.id.paddock"} {
		if certs[0].VerifyHostname(bad) == nil {
			t.Errorf("certificate of allocator/a1 carries %s", bad)
		}
	}
	if err := certs[0].VerifyHostname("host.example"); err != nil {
		t.Errorf("plain DNS name dropped: %v", err)
	}
}
