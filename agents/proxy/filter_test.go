package proxy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"paddock/engine"
)

func ruleSet(id, name string, deps []string, sources ...string) engine.TrafficFilterRuleSet {
	rs := engine.TrafficFilterRuleSet{ID: id, Name: name, Type: engine.TrafficFilterIP}
	for _, s := range sources {
		rs.Rules = append(rs.Rules, engine.TrafficFilterRule{Source: s})
	}
	for _, d := range deps {
		rs.Associations = append(rs.Associations, engine.TrafficFilterAssociation{EntityType: engine.AssociationDeployment, ID: d})
	}
	return rs
}

func TestFilterMatching(t *testing.T) {
	var bad []string
	fs := buildFilters(map[string]engine.TrafficFilterRuleSet{
		"a": ruleSet("a", "office", []string{"d1", "d2"}, "10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "not-an-ip"),
		"b": ruleSet("b", "vpn", []string{"d2"}, "172.16.0.0/12"),
		"c": ruleSet("c", "unused", nil, "0.0.0.0/0"),
		"e": ruleSet("e", "empty", []string{"d3"}),
		"g": ruleSet("g", "edges", []string{"d4"}, "0.0.0.0/0", "2001:db8:1:2:3::/80", "::/0"),
		"h": ruleSet("h", "v6-64", []string{"d5"}, "2001:db8:0:7::/64", "2001:db8::1"),
	}, func(set, source string, err error) { bad = append(bad, set+":"+source) })
	if len(bad) != 1 || bad[0] != "a:not-an-ip" {
		t.Fatalf("bad rules reported %v", bad)
	}
	if fs["open"] != nil {
		t.Fatal("a deployment without rule sets has a filter")
	}
	cases := []struct {
		dep, addr string
		want      bool
	}{
		{"d1", "10.1.2.3", true},
		{"d1", "11.0.0.1", false},
		{"d1", "192.0.2.7", true},
		{"d1", "192.0.2.8", false},
		{"d1", "::ffff:10.9.9.9", true}, // IPv4-mapped peers match IPv4 rules
		{"d1", "2001:db8::5", true},
		{"d1", "2001:db9::5", false},
		{"d1", "172.16.0.1", false},
		{"d2", "172.16.0.1", true}, // the union of the attached sets
		{"d2", "10.0.0.1", true},
		{"d3", "10.0.0.1", false}, // attached, no rules: nothing passes
		{"d4", "203.0.113.1", true},
		{"d4", "2001:db9::1", true},
		{"d5", "2001:db8:0:7:ffff::1", true},
		{"d5", "2001:db8:0:8::1", false},
		{"d5", "2001:db8::1", true},
		{"d5", "2001:db8::2", false},
		{"d5", "10.0.0.1", false},
	}
	for _, c := range cases {
		if got := fs[c.dep].allows(netip.MustParseAddr(c.addr)); got != c.want {
			t.Errorf("%s from %s: allowed %v, want %v", c.dep, c.addr, got, c.want)
		}
	}
	if !strings.Contains(fs["d2"].sets, "office (a)") || !strings.Contains(fs["d2"].sets, "vpn (b)") {
		t.Errorf("d2's sets named %q", fs["d2"].sets)
	}
}

// reqWith parses a request head carrying the given X-Forwarded-For
// headers.
func reqWith(t testing.TB, xff ...string) *request {
	t.Helper()
	head := "GET / HTTP/1.1\r\nHost: x\r\n"
	for _, v := range xff {
		head += "X-Forwarded-For: " + v + "\r\n"
	}
	var r request
	if err := readRequest(bufio.NewReader(strings.NewReader(head+"\r\n")), &r, 64<<10); err != nil {
		t.Fatal(err)
	}
	return &r
}

func TestClientAddr(t *testing.T) {
	lb := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24"), netip.MustParsePrefix("::1/128")}
	cases := []struct {
		name    string
		trusted []netip.Prefix
		peer    string
		xff     []string
		want    string
	}{
		{"no trusted proxies: the peer", nil, "10.0.0.1", []string{"1.2.3.4"}, "10.0.0.1"},
		{"untrusted peer: XFF ignored", lb, "198.51.100.1", []string{"1.2.3.4"}, "198.51.100.1"},
		{"trusted peer, no XFF", lb, "10.0.0.1", nil, "10.0.0.1"},
		{"trusted peer: rightmost entry", lb, "10.0.0.1", []string{"1.2.3.4"}, "1.2.3.4"},
		{"forged left entries skipped", lb, "10.0.0.1", []string{"6.6.6.6, 1.2.3.4"}, "1.2.3.4"},
		{"trusted hops skipped", lb, "10.0.0.1", []string{"1.2.3.4, 10.0.0.7"}, "1.2.3.4"},
		{"several headers: last is rightmost", lb, "10.0.0.1", []string{"1.2.3.4", "10.0.0.9"}, "1.2.3.4"},
		{"port and spaces", lb, "10.0.0.1", []string{" 1.2.3.4:5678 ,"}, "1.2.3.4"},
		{"IPv6 with port", lb, "::1", []string{"[2001:db8::7]:443"}, "2001:db8::7"},
		{"garbage stops at the last trusted hop", lb, "10.0.0.1", []string{"1.2.3.4, unknown, 10.0.0.8"}, "10.0.0.8"},
		{"all trusted: leftmost", lb, "10.0.0.1", []string{"10.0.0.3, 10.0.0.4"}, "10.0.0.3"},
		{"mapped peer", lb, "::ffff:10.0.0.1", []string{"1.2.3.4"}, "1.2.3.4"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := clientAddr(c.trusted, netip.MustParseAddr(c.peer), reqWith(t, c.xff...))
			if got.String() != c.want {
				t.Fatalf("client %s, want %s", got, c.want)
			}
		})
	}
}

// ppHeader builds a PROXY v2 header.
func ppHeader(cmd, fam byte, src, dst netip.AddrPort, tlv int) []byte {
	var body []byte
	switch fam >> 4 {
	case 1:
		s, d := src.Addr().As4(), dst.Addr().As4()
		body = append(append(body, s[:]...), d[:]...)
	case 2:
		s, d := src.Addr().As16(), dst.Addr().As16()
		body = append(append(body, s[:]...), d[:]...)
	}
	if fam>>4 == 1 || fam>>4 == 2 {
		body = binary.BigEndian.AppendUint16(body, src.Port())
		body = binary.BigEndian.AppendUint16(body, dst.Port())
	}
	body = append(body, make([]byte, tlv)...)
	h := append([]byte{}, ppSignature...)
	h = append(h, 0x20|cmd, fam)
	h = binary.BigEndian.AppendUint16(h, uint16(len(body)))
	return append(h, body...)
}

func TestParseProxyV2(t *testing.T) {
	src4, dst4 := netip.MustParseAddrPort("192.0.2.9:40000"), netip.MustParseAddrPort("10.0.0.1:9200")
	src6, dst6 := netip.MustParseAddrPort("[2001:db8::9]:40001"), netip.MustParseAddrPort("[2001:db8::1]:9200")
	v4 := ppHeader(1, 0x11, src4, dst4, 0)
	cases := []struct {
		name string
		in   []byte
		want string // source, "" for none
		n    int
		err  string
	}{
		{"ipv4", append(v4, "GET / HTTP/1.1\r\n"...), "192.0.2.9:40000", len(v4), ""},
		{"ipv6 with TLVs", ppHeader(1, 0x21, src6, dst6, 7), "[2001:db8::9]:40001", 16 + 36 + 7, ""},
		{"local (health check)", ppHeader(0, 0x00, netip.AddrPort{}, netip.AddrPort{}, 0), "", 16, ""},
		{"unix family", ppHeader(1, 0x31, netip.AddrPort{}, netip.AddrPort{}, 216), "", 16 + 216, ""},
		{"partial head", v4[:10], "", 0, "incomplete"},
		{"partial addresses", v4[:20], "", 0, "incomplete"},
		{"plain HTTP", []byte("GET / HTTP/1.1\r\n\r\n"), "", 0, "does not begin"},
		{"version 1", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), "", 0, "does not begin"},
		{"bad version", append(append([]byte{}, ppSignature...), 0x11, 0x11, 0, 12), "", 0, "only version 2"},
		{"bad command", append(append([]byte{}, ppSignature...), 0x25, 0x11, 0, 0), "", 0, "command 5"},
		{"short ipv4 block", append(append([]byte{}, ppSignature...), 0x21, 0x11, 0, 4, 1, 2, 3, 4), "", 0, "needs 12"},
		{"too long", append(append([]byte{}, ppSignature...), 0x21, 0x11, 0xff, 0xff), "", 0, "at most"},
		{"unknown family", append(append([]byte{}, ppSignature...), 0x21, 0x41, 0, 0), "", 0, "family 4"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ap, n, err := parseProxyV2(c.in)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("got %v %d %v, want error containing %q", ap, n, err, c.err)
				}
				return
			}
			if err != nil || n != c.n {
				t.Fatalf("got %v %d %v, want %s %d", ap, n, err, c.want, c.n)
			}
			if (c.want == "") != !ap.IsValid() || (c.want != "" && ap.String() != c.want) {
				t.Fatalf("source %v, want %q", ap, c.want)
			}
		})
	}
}

func FuzzParseProxyV2(f *testing.F) {
	f.Add(ppHeader(1, 0x11, netip.MustParseAddrPort("1.2.3.4:5"), netip.MustParseAddrPort("5.6.7.8:9"), 3))
	f.Add(ppHeader(1, 0x21, netip.MustParseAddrPort("[::1]:5"), netip.MustParseAddrPort("[::2]:9"), 0))
	f.Add(ppHeader(0, 0, netip.AddrPort{}, netip.AddrPort{}, 0))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ap, n, err := parseProxyV2(b)
		if err != nil {
			if n != 0 || ap.IsValid() {
				t.Fatalf("error %v with n=%d source %v", err, n, ap)
			}
			return
		}
		if n < ppHeadLen || n > len(b) {
			t.Fatalf("header length %d outside [16, %d]", n, len(b))
		}
		// The header alone parses the same; cut short, it asks for more.
		ap2, n2, err := parseProxyV2(b[:n])
		if err != nil || n2 != n || ap2 != ap {
			t.Fatalf("header alone: %v %d %v, with the rest: %v %d", ap2, n2, err, ap, n)
		}
		if _, _, err := parseProxyV2(b[:n-1]); err != errPPShort {
			t.Fatalf("cut short: %v, want errPPShort", err)
		}
	})
}

// fromAddr is a client whose connections come from the local address ip.
func fromAddr(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

// syncBuffer is an access log sink for tests.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s.b.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

func (p *Proxy) setFilters(routes map[string]engine.Route, sets ...engine.TrafficFilterRuleSet) {
	p.mu.Lock()
	p.snap = Snapshot{Routes: routes, Allocators: map[string]AllocatorView{}, Filters: map[string]engine.TrafficFilterRuleSet{}, Source: "zookeeper"}
	for _, s := range sets {
		p.snap.Filters[s.ID] = s
	}
	p.installLocked()
	p.mu.Unlock()
}

// TestFilterEnforced: on the event loops, the goroutine server and the
// HTTPS listener, an allowed source passes, another gets 403 with an
// Elasticsearch-shaped body, an unfiltered deployment stays open.
func TestFilterEnforced(t *testing.T) {
	b1 := newTestBackend(t, "b1")
	const open = "fedcba9876543210fedcba9876543210"
	routes := map[string]engine.Route{testID: liveRoute(testID, 1, esBackend("i1", "z1", "a1", b1.addr())),
		open: liveRoute(open, 1, esBackend("i2", "z1", "a1", b1.addr()))}
	cert := httptest.NewTLSServer(http.NotFoundHandler())
	t.Cleanup(cert.Close)
	for _, loops := range []int{0, -1} {
		p := startProxy(t, func(c *Config) {
			c.EventLoops = loops
			c.HTTPSAddr = "127.0.0.1:0"
			c.TLSConfig = &tls.Config{Certificates: cert.TLS.Certificates, MinVersion: tls.VersionTLS12}
		})
		p.setFilters(routes, ruleSet("f1", "office", []string{testID}, "127.0.0.1"))
		for _, scheme := range []string{"http", "https"} {
			addr := p.HTTPAddr()
			if scheme == "https" {
				addr = p.HTTPSAddr()
			}
			call := func(from, id string) (int, string) {
				c := fromAddr(from)
				c.Transport.(*http.Transport).TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
				req, _ := http.NewRequest("GET", scheme+"://"+addr+"/", nil)
				req.Host = id + ".localhost"
				resp, err := c.Do(req)
				if err != nil {
					t.Fatalf("%s from %s: %v", scheme, from, err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(b)
			}
			if code, _ := call("127.0.0.1", testID); code != 200 {
				t.Errorf("loops=%d %s: allowed source got %d", loops, scheme, code)
			}
			code, body := call("127.0.0.2", testID)
			if code != 403 || !strings.Contains(body, `"type":"security_exception"`) || !strings.Contains(body, "127.0.0.2") || !strings.Contains(body, `"status":403`) {
				t.Errorf("loops=%d %s: other source got %d %s", loops, scheme, code, body)
			}
			if code, _ := call("127.0.0.2", open); code != 200 {
				t.Errorf("loops=%d %s: unfiltered deployment got %d", loops, scheme, code)
			}
		}
	}
}

// TestTrustedProxiesAndProxyProtocol: X-Forwarded-For counts only from
// a trusted balancer; a PROXY v2 header gives the client's address on
// both listeners; both are the access log's client.
func TestTrustedProxiesAndProxyProtocol(t *testing.T) {
	b1 := newTestBackend(t, "b1")
	routes := map[string]engine.Route{testID: liveRoute(testID, 1, esBackend("i1", "z1", "a1", b1.addr()))}
	set := ruleSet("f1", "office", []string{testID}, "192.0.2.0/24")
	host := testID + ".localhost"

	t.Run("xff", func(t *testing.T) {
		log := &syncBuffer{}
		p := startProxy(t, func(c *Config) {
			c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
			c.AccessLog = log
		})
		p.setFilters(routes, set)
		xff := func(from, v string) int {
			a, err := get(t, fromAddr(from), p.HTTPAddr(), host, "/", map[string]string{"X-Forwarded-For": v})
			if err != nil {
				t.Fatal(err)
			}
			return a.code
		}
		if c := xff("127.0.0.1", "192.0.2.5"); c != 200 {
			t.Errorf("trusted balancer forwarding an allowed client: %d", c)
		}
		if c := xff("127.0.0.1", "192.0.2.5, 198.51.100.1"); c != 403 {
			t.Errorf("forged allowed entry left of the real client: %d", c)
		}
		if c := xff("127.0.0.2", "192.0.2.5"); c != 403 {
			t.Errorf("untrusted peer's X-Forwarded-For believed: %d", c)
		}
		waitFor(t, 5*time.Second, "access log lines", func() bool { return len(log.lines()) >= 3 })
		if got := log.lines()[0]["client"]; got != "192.0.2.5" {
			t.Errorf("access log client %v, want 192.0.2.5", got)
		}
	})

	cert := httptest.NewTLSServer(http.NotFoundHandler())
	t.Cleanup(cert.Close)
	for _, loops := range []int{0, -1} {
		log := &syncBuffer{}
		p := startProxy(t, func(c *Config) {
			c.EventLoops = loops
			c.ProxyProtocol = true
			c.AccessLog = log
			c.HTTPSAddr = "127.0.0.1:0"
			c.TLSConfig = &tls.Config{Certificates: cert.TLS.Certificates, MinVersion: tls.VersionTLS12}
		})
		p.setFilters(routes, set)
		dst := netip.MustParseAddrPort("127.0.0.1:9200")
		send := func(tlsOn bool, hdr []byte) (string, error) {
			addr := p.HTTPAddr()
			if tlsOn {
				addr = p.HTTPSAddr()
			}
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := nc.Write(hdr); err != nil {
				return "", err
			}
			var c net.Conn = nc
			if tlsOn {
				c = tls.Client(nc, &tls.Config{InsecureSkipVerify: true})
			}
			if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: "+host+"\r\nConnection: close\r\n\r\n"); err != nil {
				return "", err
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				return "", err
			}
			resp.Body.Close()
			return resp.Status[:3], nil
		}
		for _, tlsOn := range []bool{false, true} {
			allowed := ppHeader(1, 0x11, netip.MustParseAddrPort("192.0.2.44:5000"), dst, 5)
			if code, err := send(tlsOn, allowed); err != nil || code != "200" {
				t.Errorf("loops=%d tls=%v: PROXY from an allowed client: %s %v", loops, tlsOn, code, err)
			}
			other := ppHeader(1, 0x11, netip.MustParseAddrPort("198.51.100.4:5000"), dst, 0)
			if code, err := send(tlsOn, other); err != nil || code != "403" {
				t.Errorf("loops=%d tls=%v: PROXY from another client: %s %v", loops, tlsOn, code, err)
			}
			// LOCAL: the balancer's own address (127.0.0.1) is refused.
			if code, err := send(tlsOn, ppHeader(0, 0, netip.AddrPort{}, netip.AddrPort{}, 0)); err != nil || code != "403" {
				t.Errorf("loops=%d tls=%v: LOCAL: %s %v", loops, tlsOn, code, err)
			}
			// No header: the connection is closed without an answer.
			if code, err := send(tlsOn, nil); err == nil {
				t.Errorf("loops=%d tls=%v: a connection without a PROXY header was answered %s", loops, tlsOn, code)
			}
		}
		waitFor(t, 5*time.Second, "access log lines", func() bool { return len(log.lines()) >= 6 })
		if got := log.lines()[0]["client"]; got != "192.0.2.44:5000" {
			t.Errorf("loops=%d: access log client %v, want the PROXY source", loops, got)
		}
	}
}

func BenchmarkFilterCheck(b *testing.B) {
	for _, n := range []int{1, 16, 128} {
		sources := make([]string, n)
		for i := range sources {
			sources[i] = netip.AddrFrom4([4]byte{10, byte(i), 0, 0}).String() + "/16"
		}
		fs := buildFilters(map[string]engine.TrafficFilterRuleSet{"a": ruleSet("a", "a", []string{"d"}, sources...)}, func(string, string, error) {})
		f := fs["d"]
		last := netip.AddrFrom4([4]byte{10, byte(n - 1), 1, 1}) // matches the last rule: the worst case
		b.Run(strconv.Itoa(n)+"-rules", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !f.allows(last) {
					b.Fatal("refused")
				}
			}
		})
	}
	b.Run("client-addr-xff", func(b *testing.B) {
		trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
		r := reqWith(b, "192.0.2.5, 10.0.0.7")
		peer := netip.MustParseAddr("10.0.0.1")
		b.ReportAllocs()
		for b.Loop() {
			if clientAddr(trusted, peer, r).Is6() {
				b.Fatal("v6")
			}
		}
	})
}

// The check on the request path (client address, filter) allocates
// nothing, with X-Forwarded-For and with IPv6.
func TestFilterCheckDoesNotAllocate(t *testing.T) {
	fs := buildFilters(map[string]engine.TrafficFilterRuleSet{"a": ruleSet("a", "a", []string{"d"}, "10.0.0.0/8", "2001:db8::/32")},
		func(string, string, error) {})
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	r := reqWith(t, "2001:db8::7, 127.0.0.5")
	peer := netip.MustParseAddr("127.0.0.1")
	n := testing.AllocsPerRun(1000, func() {
		if !fs["d"].allows(clientAddr(trusted, peer, r)) {
			t.Fatal("refused")
		}
	})
	if n != 0 {
		t.Fatalf("%v allocations per check", n)
	}
}
