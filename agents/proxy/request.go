package proxy

import (
	"bufio"
	"bytes"
	"errors"
)

// The client side of the forwarding path: a request head parsed in
// place into one reusable buffer per connection. Nothing here allocates
// for a well-formed request with common methods.

// Header classes the proxy acts on.
const (
	hOther = iota
	hHost
	hCluster
	hContentLength
	hTransferEncoding
	hConnection
	hExpect
	hHopByHop // Keep-Alive, Proxy-Connection, TE, Trailer, Upgrade, Proxy-Authorization
	hXFF
	hXFProto
	hUpgrade // hop-by-hop too
)

// classify returns a header name's class: a switch on the length, then
// a case-insensitive compare (faster than hashing into a map).
func classify(name []byte) int {
	switch len(name) {
	case 2:
		if eqLower(name, "te") {
			return hHopByHop
		}
	case 4:
		if eqLower(name, "host") {
			return hHost
		}
	case 6:
		if eqLower(name, "expect") {
			return hExpect
		}
	case 7:
		if eqLower(name, "trailer") {
			return hHopByHop
		}
		if eqLower(name, "upgrade") {
			return hUpgrade
		}
	case 10:
		if eqLower(name, "connection") {
			return hConnection
		}
		if eqLower(name, "keep-alive") {
			return hHopByHop
		}
	case 14:
		if eqLower(name, "content-length") {
			return hContentLength
		}
	case 15:
		if eqLower(name, "x-found-cluster") {
			return hCluster
		}
		if eqLower(name, "x-forwarded-for") {
			return hXFF
		}
	case 16:
		if eqLower(name, "proxy-connection") {
			return hHopByHop
		}
	case 17:
		if eqLower(name, "transfer-encoding") {
			return hTransferEncoding
		}
		if eqLower(name, "x-forwarded-proto") {
			return hXFProto
		}
	case 19:
		if eqLower(name, "proxy-authorization") {
			return hHopByHop
		}
	}
	return hOther
}

// eqLower compares b, case-insensitively, with the lowercase ASCII s of
// the same length.
func eqLower(b []byte, s string) bool {
	for i := 0; i < len(s); i++ {
		c := b[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// field is a header line: name and value as offsets into request.buf.
type field struct {
	ns, ne, vs, ve int
	class          int
}

// request is one parsed request head.
type request struct {
	buf    []byte
	fields []field
	method string
	uriS   int
	uriE   int
	minor  int // HTTP/1.<minor>
	host   []byte
	// cluster is the X-Found-Cluster value.
	cluster []byte
	// contentLength is the body length (0 without a body); chunked
	// bodies have -1.
	contentLength int64
	chunked       bool
	close         bool // the client wants the connection closed after
	expect        bool // Expect: 100-continue
	// upgrade: the client asks to switch protocols (WebSocket...),
	// which the proxy refuses with 501; upgradeTo is the header value.
	// An Upgrade to h2c alone is ignored (the request is served over
	// HTTP/1.1, as RFC 9110 allows).
	upgrade   bool
	upgradeTo []byte
}

func (r *request) uri() []byte { return r.buf[r.uriS:r.uriE] }

func (r *request) name(f field) []byte  { return r.buf[f.ns:f.ne] }
func (r *request) value(f field) []byte { return r.buf[f.vs:f.ve] }

func (r *request) hasBody() bool { return r.chunked || r.contentLength > 0 }

// path is the request path without the query (for the access log).
func (r *request) path() []byte {
	u := r.uri()
	if i := bytes.IndexByte(u, '?'); i >= 0 {
		u = u[:i]
	}
	return u
}

// Errors of readRequest, each with the status the client gets.
type headError struct {
	status int
	msg    string
}

func (e *headError) Error() string { return e.msg }

var (
	errHeadTooLarge = &headError{431, "request header fields too large"}
	errBadRequest   = func(msg string) error { return &headError{400, msg} }
)

var methods = map[string]string{"GET": "GET", "HEAD": "HEAD", "POST": "POST", "PUT": "PUT", "DELETE": "DELETE", "OPTIONS": "OPTIONS", "PATCH": "PATCH"}

// readRequest parses a request head from br into r. max bounds the
// head's size.
func readRequest(br *bufio.Reader, r *request, max int) error {
	r.buf = r.buf[:0]
	r.fields = r.fields[:0]
	r.host, r.cluster = nil, nil
	r.contentLength, r.chunked, r.close, r.expect = 0, false, false, false
	r.upgrade, r.upgradeTo = false, nil
	total := 0
	var line []byte
	var err error
	for {
		if line, err = headLine(br); err != nil {
			return err
		}
		total += len(line) + 2
		if len(line) > 0 {
			break
		}
		if total > 4 {
			return errBadRequest("empty request line")
		}
	}
	// Request line: METHOD SP URI SP HTTP/1.x
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return errBadRequest("malformed request line")
	}
	rest := line[sp1+1:]
	sp2 := bytes.LastIndexByte(rest, ' ')
	if sp2 <= 0 {
		return errBadRequest("malformed request line")
	}
	m := line[:sp1]
	if k, ok := methods[string(m)]; ok {
		r.method = k
	} else {
		for _, c := range m {
			if !tokenChar(c) {
				return errBadRequest("malformed method")
			}
		}
		r.method = string(m)
	}
	uri := rest[:sp2]
	for _, c := range uri {
		if c <= ' ' || c == 0x7f {
			return errBadRequest("malformed request target")
		}
	}
	proto := rest[sp2+1:]
	switch string(proto) {
	case "HTTP/1.1":
		r.minor = 1
	case "HTTP/1.0":
		r.minor = 0
		r.close = true
	default:
		return &headError{505, "HTTP version not supported: use HTTP/1.1"}
	}
	r.uriS = len(r.buf)
	r.buf = append(r.buf, uri...)
	r.uriE = len(r.buf)
	var hostE, clusterE, hostS, clusterS int = -1, -1, 0, 0
	sawCL := false
	for {
		if line, err = headLine(br); err != nil {
			return err
		}
		total += len(line) + 2
		if total > max {
			return errHeadTooLarge
		}
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			return errBadRequest("obsolete header line folding")
		}
		i := bytes.IndexByte(line, ':')
		if i <= 0 {
			return errBadRequest("malformed header line")
		}
		name := line[:i]
		for _, c := range name {
			if !tokenChar(c) {
				return errBadRequest("malformed header name")
			}
		}
		val := bytes.TrimSpace(line[i+1:])
		f := field{ns: len(r.buf)}
		r.buf = append(r.buf, name...)
		f.ne = len(r.buf)
		f.vs = len(r.buf)
		r.buf = append(r.buf, val...)
		f.ve = len(r.buf)
		f.class = classify(name)
		switch f.class {
		case hHost:
			if hostE >= 0 {
				return errBadRequest("more than one Host header")
			}
			hostS, hostE = f.vs, f.ve
		case hCluster:
			clusterS, clusterE = f.vs, f.ve
		case hContentLength:
			n, ok := parseLength(val)
			if !ok || (sawCL && n != r.contentLength) {
				return errBadRequest("malformed Content-Length")
			}
			sawCL, r.contentLength = true, n
		case hTransferEncoding:
			if r.chunked {
				return errBadRequest("more than one Transfer-Encoding header: send one")
			}
			if !bytes.EqualFold(val, chunkedBytes) {
				return &headError{501, "only the chunked transfer coding is supported"}
			}
			r.chunked = true
		case hConnection:
			forTokens(val, func(tok []byte) {
				switch {
				case bytes.EqualFold(tok, connClose):
					r.close = true
				case bytes.EqualFold(tok, keepAlive) && r.minor == 0:
					r.close = false
				}
			})
		case hExpect:
			if bytes.EqualFold(val, continue100) {
				r.expect = true
			}
		case hUpgrade:
			forTokens(val, func(tok []byte) {
				if !bytes.EqualFold(tok, h2c) {
					r.upgrade = true
				}
			})
			if r.upgrade {
				r.upgradeTo = r.buf[f.vs:f.ve]
			}
		}
		r.fields = append(r.fields, f)
	}
	if r.chunked && sawCL {
		return errBadRequest("both Content-Length and Transfer-Encoding: send one")
	}
	if r.chunked {
		r.contentLength = -1
	}
	if hostE >= 0 {
		r.host = r.buf[hostS:hostE]
	} else if r.minor == 1 {
		return errBadRequest("missing Host header")
	}
	if clusterE >= 0 {
		r.cluster = r.buf[clusterS:clusterE]
	}
	return nil
}

var (
	keepAlive   = []byte("keep-alive")
	continue100 = []byte("100-continue")
	h2c         = []byte("h2c")
)

// headLine reads one head line without CRLF (valid until the next read).
func headLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, errHeadTooLarge
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

func parseLength(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func forTokens(v []byte, f func([]byte)) {
	for len(v) > 0 {
		i := bytes.IndexByte(v, ',')
		var tok []byte
		if i < 0 {
			tok, v = v, nil
		} else {
			tok, v = v[:i], v[i+1:]
		}
		if tok = bytes.TrimSpace(tok); len(tok) > 0 {
			f(tok)
		}
	}
}

func tokenChar(c byte) bool {
	if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}
