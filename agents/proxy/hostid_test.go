package proxy

import (
	"errors"
	"strings"
	"testing"
)

const testID = "0123456789abcdef0123456789abcdef"

func TestParseTarget(t *testing.T) {
	cases := []struct {
		name, host, header, domain string
		want                       Target
		err                        error
	}{
		{"host", testID + ".localhost", "", "localhost", Target{testID, kindES}, nil},
		{"host with port", testID + ".localhost:9200", "", "localhost", Target{testID, kindES}, nil},
		{"upper case host folded", strings.ToUpper(testID) + ".LOCALHOST:9243", "", "localhost", Target{testID, kindES}, nil},
		{"fully qualified", testID + ".example.com.", "", "example.com", Target{testID, kindES}, nil},
		{"kibana", testID + ".kb.example.com", "", "example.com", Target{testID, kindKB}, nil},
		{"header wins", "127.0.0.1:9200", testID, "localhost", Target{testID, kindES}, nil},
		{"header trimmed", "whatever", " " + testID + " ", "localhost", Target{testID, kindES}, nil},
		{"header malformed", testID + ".localhost", "ABC/../x", "localhost", Target{}, errBadID},
		{"no host", "", "", "localhost", Target{}, errNoID},
		{"ip address", "127.0.0.1:9200", "", "localhost", Target{}, errNotOurs},
		{"ipv6 literal", "[::1]:9200", "", "localhost", Target{}, errNotOurs},
		{"domain only", "localhost", "", "localhost", Target{}, errNotOurs},
		{"other domain", testID + ".example.org", "", "example.com", Target{}, errNotOurs},
		{"suffix trick", testID + ".evillocalhost", "", "localhost", Target{}, errNotOurs},
		{"bad port", testID + ".localhost:92x0", "", "localhost", Target{}, errBadHost},
		{"long port", testID + ".localhost:9200000", "", "localhost", Target{}, errBadHost},
		{"nested subdomain", "a.b.localhost", "", "localhost", Target{}, errBadID},
		{"junk in id", "a_b.localhost", "", "localhost", Target{}, errBadHost},
		{"leading dash", "-abc.localhost", "", "localhost", Target{}, errBadID},
		{"id too long", strings.Repeat("a", 65) + ".localhost", "", "localhost", Target{}, errBadID},
		{"empty id", ".localhost", "", "localhost", Target{}, errNotOurs},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseTarget(c.host, c.header, c.domain)
			if !errors.Is(err, c.err) {
				t.Fatalf("ParseTarget(%q, %q) error = %v, want %v", c.host, c.header, err, c.err)
			}
			if got != c.want {
				t.Fatalf("ParseTarget(%q, %q) = %+v, want %+v", c.host, c.header, got, c.want)
			}
		})
	}
}

func TestParseTargetDoesNotAllocate(t *testing.T) {
	host := testID + ".localhost:9200"
	n := testing.AllocsPerRun(100, func() { _, _ = ParseTarget(host, "", "localhost") })
	if n != 0 {
		t.Fatalf("ParseTarget allocates %v times per call on the hot path, want 0", n)
	}
}

// FuzzParseTarget: whatever the input, parsing never panics, an accepted
// id is well formed, and the host form round-trips.
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{testID + ".localhost", testID + ".kb.localhost:9243", "[::1]:80", "a.b.c", ":", "", "LOCALHOST.", "x.localhost:"} {
		f.Add(s, "")
	}
	f.Add("127.0.0.1", testID)
	f.Fuzz(func(t *testing.T, host, header string) {
		tg, err := ParseTarget(host, header, "localhost")
		if err != nil {
			if tg != (Target{}) {
				t.Fatalf("error %v with a target %+v", err, tg)
			}
			return
		}
		if !validID(tg.ID) {
			t.Fatalf("accepted malformed id %q from host %q header %q", tg.ID, host, header)
		}
		if tg.Kind != kindES && tg.Kind != kindKB {
			t.Fatalf("kind %q", tg.Kind)
		}
		if header == "" {
			h := tg.ID + ".localhost"
			if tg.Kind == kindKB {
				h = tg.ID + ".kb.localhost"
			}
			again, err := ParseTarget(h, "", "localhost")
			if err != nil || again != tg {
				t.Fatalf("round trip of %+v via %q: %+v, %v", tg, h, again, err)
			}
		}
	})
}

func TestClassify(t *testing.T) {
	cases := map[string]int{
		"Host": hHost, "HOST": hHost, "X-Found-Cluster": hCluster, "content-length": hContentLength,
		"Transfer-Encoding": hTransferEncoding, "Connection": hConnection, "Expect": hExpect,
		"Keep-Alive": hHopByHop, "Proxy-Connection": hHopByHop, "TE": hHopByHop, "Trailer": hHopByHop,
		"Upgrade": hUpgrade, "Proxy-Authorization": hHopByHop, "X-Forwarded-For": hXFF,
		"X-Forwarded-Proto": hXFProto, "Hosts": hOther, "Authorization": hOther, "": hOther, "Content-Lengt": hOther,
	}
	for name, want := range cases {
		t.Run(name, func(t *testing.T) {
			if got := classify([]byte(name)); got != want {
				t.Fatalf("classify(%q) = %d, want %d", name, got, want)
			}
		})
	}
}
