package engine

import (
	"strings"
	"testing"
)

func TestParseSource(t *testing.T) {
	cases := []struct {
		in, want, err string
	}{
		{"10.0.0.0/8", "10.0.0.0/8", ""},
		{" 192.0.2.7 ", "192.0.2.7/32", ""},
		{"2001:db8::/32", "2001:db8::/32", ""},
		{"::1", "::1/128", ""},
		{"::ffff:10.1.0.0/112", "10.1.0.0/16", ""},
		{"::ffff:127.0.0.1", "127.0.0.1/32", ""},
		{"0.0.0.0/0", "0.0.0.0/0", ""},
		{"10.0.0.1/8", "", "did you mean 10.0.0.0/8"},
		{"10.0.0.0/33", "", "not a valid CIDR block"},
		{"office", "", "neither an IP address nor a CIDR block"},
		{"", "", "empty source"},
		{"fe80::1%eth0", "", "neither"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			p, err := ParseSource(c.in)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("ParseSource(%q) = %v, %v; want error containing %q", c.in, p, err, c.err)
				}
				return
			}
			if err != nil || p.String() != c.want {
				t.Fatalf("ParseSource(%q) = %v, %v; want %s", c.in, p, err, c.want)
			}
		})
	}
}
