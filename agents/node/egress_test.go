package node

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestEgressDialer: the node's side of the peer egress protocol (the
// allocator's side is agents/allocator TestEgress, both together
// TestDockerMultiHostReplication): a copy at <id>.peer.paddock is asked
// of the socket with CONNECT and the routing's via; its answer's refusal
// text reaches the caller; other hosts are dialled directly; a peer
// host without a socket or without a via fails saying why.
func TestEgressDialer(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "peer.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	go func() {
		_ = http.Serve(peer, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "peer "+r.URL.Path) }))
	}()
	// A stand-in egress: forwards CONNECT c1.peer.paddock to the peer,
	// refuses the rest with the text the allocator would send.
	asked := make(chan string, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				asked <- req.Method + " " + req.Host + " via " + req.Header.Get(ViaHeader)
				if req.Host != "c1"+PeerHostSuffix+":80" {
					fmt.Fprint(c, "HTTP/1.1 403 Forbidden\r\nContent-Length: 15\r\n\r\nnot your copies")
					return
				}
				p, err := net.Dial("tcp", peer.Addr().String())
				if err != nil {
					return
				}
				defer p.Close()
				fmt.Fprint(c, "HTTP/1.1 200 Connection established\r\n\r\n")
				go func() { _, _ = io.Copy(p, br) }()
				_, _ = io.Copy(c, p)
			}()
		}
	}()
	d := &egressDialer{socket: sock}
	d.setRouting(&Routing{Copies: []CopyAddr{{ID: "c1", URL: "http://c1" + PeerHostSuffix, Via: "10.0.0.2:9400"},
		{ID: "c2", URL: "http://c2" + PeerHostSuffix, Via: "10.0.0.3:9400"}, {ID: "c3", URL: "http://" + peer.Addr().String()}}})
	hc := &http.Client{Transport: peerTransport(d), Timeout: 10 * time.Second}
	get := func(u string) (string, error) {
		resp, err := hc.Get(u)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b), nil
	}
	for _, tc := range []struct {
		name, url, want, err, asked string
	}{
		{"through the egress", "http://c1" + PeerHostSuffix + "/_paddock/replication/ops", "peer /_paddock/replication/ops", "", "CONNECT c1.peer.paddock:80 via 10.0.0.2:9400"},
		{"refused by the egress", "http://c2" + PeerHostSuffix + "/x", "", "403 Forbidden: not your copies", "CONNECT c2.peer.paddock:80 via 10.0.0.3:9400"},
		{"no via in the routing", "http://c9" + PeerHostSuffix + "/x", "", "has no allocator tunnel (via)", ""},
		{"direct", "http://" + peer.Addr().String() + "/y", "peer /y", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := get(tc.url)
			switch {
			case tc.err == "" && (err != nil || got != tc.want):
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("got %q, %v; want an error with %q", got, err, tc.err)
			}
			if tc.asked != "" {
				if a := <-asked; a != tc.asked {
					t.Fatalf("the egress was asked %q, want %q", a, tc.asked)
				}
			}
			select {
			case a := <-asked:
				t.Fatalf("the egress was asked %q too", a)
			default:
			}
		})
	}
	none := &egressDialer{}
	none.setRouting(&Routing{Copies: []CopyAddr{{ID: "c1", URL: "http://c1" + PeerHostSuffix, Via: "10.0.0.2:9400"}}})
	if _, err := none.DialContext(context.Background(), "tcp", "c1"+PeerHostSuffix+":80"); err == nil || !strings.Contains(err.Error(), "no --peer-egress") {
		t.Fatalf("a node without an egress socket: %v", err)
	}
	rt := Routing{Self: "c1", Term: 1, Primary: "c1", InSync: []string{"c1"}, Copies: []CopyAddr{{ID: "c1", URL: "http://c1" + PeerHostSuffix}}}
	if err := rt.validate(); err == nil || !strings.Contains(err.Error(), "no [via]") {
		t.Fatalf("a peer URL without via validated: %v", err)
	}
}
