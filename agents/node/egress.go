package node

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// Node-to-node traffic across hosts (docs/architecture.md, "Node
// tunnels"): a copy whose URL host is <instance>.peer.paddock is reached
// through this node's allocator, never directly. The node opens a
// connection on the unix socket its allocator mounted into the container
// (--peer-egress), asks for the copy with an HTTP CONNECT naming it and
// the copy's allocator tunnel (the routing's "via"), and then speaks
// plain HTTP over the stream the allocator forwards over mTLS. One
// connection carries one copy's requests: the transport pools them per
// URL host, so keep-alive works as with a direct address.

// PeerHostSuffix ends the URL host of a copy reached through the
// allocators (<instance id>.peer.paddock).
const PeerHostSuffix = ".peer.paddock"

// ViaHeader carries, on the CONNECT to the egress, the allocator tunnel
// (host:port) in front of the copy asked for.
const ViaHeader = "X-Paddock-Via"

// ContainerEgressSocket is where allocators mount the egress socket in
// node containers.
const ContainerEgressSocket = "/run/paddock/peer.sock"

// egressDialer dials copies: <instance>.peer.paddock through the
// allocator's socket, anything else directly.
type egressDialer struct {
	socket string
	// vias maps a URL host (<instance>.peer.paddock) to the tunnel in
	// front of it, from the current routing.
	vias   atomic.Pointer[map[string]string]
	direct net.Dialer
}

func (d *egressDialer) setRouting(rt *Routing) {
	m := map[string]string{}
	if rt != nil {
		for _, c := range rt.Copies {
			if c.Via == "" {
				continue
			}
			if h := peerHost(c.URL); h != "" {
				m[h] = c.Via
			}
		}
	}
	d.vias.Store(&m)
}

// peerHost is the host of a copy URL when it names a copy reached
// through the allocators, else "".
func peerHost(u string) string {
	h := strings.TrimPrefix(strings.TrimPrefix(u, "http://"), "https://")
	if i := strings.IndexAny(h, "/:"); i >= 0 {
		h = h[:i]
	}
	if !strings.HasSuffix(h, PeerHostSuffix) {
		return ""
	}
	return h
}

func (d *egressDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || !strings.HasSuffix(host, PeerHostSuffix) {
		return d.direct.DialContext(ctx, network, addr)
	}
	if d.socket == "" {
		return nil, fmt.Errorf("copy %s is reached through the allocator's egress, but this node has no --peer-egress socket (run it under an allocator that offers one)", host)
	}
	var via string
	if m := d.vias.Load(); m != nil {
		via = (*m)[host]
	}
	if via == "" {
		return nil, fmt.Errorf("copy %s has no allocator tunnel (via) in the routing: wait for the next routing push", host)
	}
	c, err := d.direct.DialContext(ctx, "unix", d.socket)
	if err != nil {
		return nil, fmt.Errorf("peer egress %s: %w (is the allocator running?)", d.socket, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	} else {
		_ = c.SetDeadline(time.Now().Add(15 * time.Second))
	}
	// A context ended mid-handshake closes the connection.
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	req := "CONNECT " + addr + " HTTP/1.1\r\nHost: " + addr + "\r\n" + ViaHeader + ": " + via + "\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		c.Close()
		return nil, fmt.Errorf("peer egress %s: %w", d.socket, err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("peer egress %s: reading its answer for %s: %w", d.socket, host, err)
	}
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		c.Close()
		return nil, fmt.Errorf("peer egress refused %s via %s: %s: %s", host, via, resp.Status, strings.TrimSpace(string(msg)))
	}
	_ = c.SetDeadline(time.Time{})
	if br.Buffered() > 0 {
		return &bufferedConn{Conn: c, r: br}, nil
	}
	return c, nil
}

// bufferedConn reads what the CONNECT answer's reader already holds
// first.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }

// peerTransport is the transport of a node's peer client: the default
// transport's settings with the egress dialer.
func peerTransport(d *egressDialer) *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.DialContext = d.DialContext
	tr.MaxIdleConnsPerHost = 16
	return tr
}
