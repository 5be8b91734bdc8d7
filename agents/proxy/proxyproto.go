package proxy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"
)

// PROXY protocol version 2 (haproxy.org/download/2.9/doc/proxy-protocol.txt):
// a 16-byte head (signature, version and command, family, length) and
// the addresses. Only the source address is used.

var ppSignature = []byte("\r\n\r\n\x00\r\nQUIT\n")

const (
	ppHeadLen = 16
	// ppMaxLen bounds the address block with its TLVs: the whole header
	// must fit the event loop's read buffer.
	ppMaxLen = 4096
)

// errPPShort: more bytes are needed to parse the header.
var errPPShort = errors.New("PROXY header incomplete")

// parseProxyV2 parses a PROXY v2 header at the start of b. It returns
// the source address (invalid for LOCAL connections and families
// without addresses: use the peer's) and the header's length, or
// errPPShort when b holds only part of it.
func parseProxyV2(b []byte) (netip.AddrPort, int, error) {
	n := min(len(b), len(ppSignature))
	if !bytes.Equal(b[:n], ppSignature[:n]) {
		return netip.AddrPort{}, 0, errors.New("connection does not begin with a PROXY protocol v2 header (the proxy runs with --proxy-protocol: send through a load balancer speaking PROXY v2)")
	}
	if len(b) < ppHeadLen {
		return netip.AddrPort{}, 0, errPPShort
	}
	verCmd, fam := b[12], b[13]
	size := int(binary.BigEndian.Uint16(b[14:16]))
	if verCmd>>4 != 2 {
		return netip.AddrPort{}, 0, fmt.Errorf("PROXY protocol version %d: only version 2 is accepted", verCmd>>4)
	}
	if size > ppMaxLen {
		return netip.AddrPort{}, 0, fmt.Errorf("PROXY header of %d bytes: at most %d", size, ppMaxLen)
	}
	total := ppHeadLen + size
	if len(b) < total {
		return netip.AddrPort{}, 0, errPPShort
	}
	body := b[ppHeadLen:total]
	switch verCmd & 0xf {
	case 0: // LOCAL: the balancer's own connection (health checks)
		return netip.AddrPort{}, total, nil
	case 1: // PROXY
	default:
		return netip.AddrPort{}, 0, fmt.Errorf("PROXY command %d: only LOCAL (0) and PROXY (1) exist", verCmd&0xf)
	}
	switch fam >> 4 {
	case 1: // AF_INET
		if len(body) < 12 {
			return netip.AddrPort{}, 0, fmt.Errorf("PROXY IPv4 address block of %d bytes: needs 12", len(body))
		}
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(body[0:4])), binary.BigEndian.Uint16(body[8:10])), total, nil
	case 2: // AF_INET6
		if len(body) < 36 {
			return netip.AddrPort{}, 0, fmt.Errorf("PROXY IPv6 address block of %d bytes: needs 36", len(body))
		}
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(body[0:16])).Unmap(), binary.BigEndian.Uint16(body[32:34])), total, nil
	case 0, 3: // AF_UNSPEC, AF_UNIX: no address to use
		return netip.AddrPort{}, total, nil
	}
	return netip.AddrPort{}, 0, fmt.Errorf("PROXY address family %d: unknown", fam>>4)
}

// ppAccepted says whether a PROXY header from peer is believed.
func (p *Proxy) ppAccepted(peer netip.Addr) bool {
	return len(p.cfg.TrustedProxies) == 0 || prefixesContain(p.cfg.TrustedProxies, peer)
}

// readProxyHeader reads a PROXY v2 header from c (the raw connection,
// under TLS too), exactly: nothing past it is consumed.
func readProxyHeader(c net.Conn, timeout time.Duration) (netip.AddrPort, error) {
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	defer c.SetReadDeadline(time.Time{})
	var head [ppHeadLen]byte
	if _, err := io.ReadFull(c, head[:]); err != nil {
		return netip.AddrPort{}, fmt.Errorf("reading the PROXY header: %w", err)
	}
	if _, _, err := parseProxyV2(head[:]); err != nil && !errors.Is(err, errPPShort) {
		return netip.AddrPort{}, err
	}
	size := int(binary.BigEndian.Uint16(head[14:16]))
	buf := make([]byte, ppHeadLen+size)
	copy(buf, head[:])
	if _, err := io.ReadFull(c, buf[ppHeadLen:]); err != nil {
		return netip.AddrPort{}, fmt.Errorf("reading the PROXY header: %w", err)
	}
	ap, _, err := parseProxyV2(buf)
	return ap, err
}

// peerOf is the address of a connection's peer.
func peerOf(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}
