package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"strconv"
	"sync"
	"time"
)

// The forwarding path writes the request straight onto a pooled
// keep-alive connection and parses the response head itself, copying
// header names from a table of common ones and body bytes from the
// connection's buffer: no http.Transport, no per-request goroutine.

// errStale: a reused connection failed before any response byte (the
// backend closed it while idle); the request may be sent again on a
// fresh connection when it is idempotent.
var errStale = errors.New("pooled connection closed by the backend")

// exchangeError tells the handler what failed.
type exchangeError struct {
	err error
	// timeout: no answer within the upstream timeout (504).
	timeout bool
	// started: response bytes reached the client; only aborting is left.
	started bool
	// stale: see errStale.
	stale bool
	// connect: no connection could be made (another backend may do).
	connect bool
}

func (e *exchangeError) Error() string { return e.err.Error() }
func (e *exchangeError) Unwrap() error { return e.err }

var copyBufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

var (
	crlf         = []byte("\r\n")
	colonSpace   = []byte(": ")
	http11       = []byte(" HTTP/1.1\r\n")
	hdrChunked   = []byte("Transfer-Encoding: chunked\r\n")
	hdrCL        = []byte("Content-Length: ")
	hdrXFF       = []byte("X-Forwarded-For: ")
	hdrHost      = []byte("Host: ")
	hdrXFProto   = []byte("X-Forwarded-Proto: ")
	commaSpace   = []byte(", ")
	strHTTPS     = []byte("https")
	strHTTP      = []byte("http")
	connClose    = []byte("close")
	chunkedBytes = []byte("chunked")
)

// skipRequestHeader lists hop-by-hop headers and those the proxy writes
// itself.
func skipRequestHeader(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
		"Content-Length", "X-Forwarded-For", "X-Forwarded-Proto", "Proxy-Authorization":
		return true
	}
	return false
}

// writeRequest writes the request head and body to the backend.
func writeRequest(c *upConn, r *http.Request, clientIP string, isTLS bool) error {
	bw := c.bw
	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	uri := r.RequestURI
	if uri == "" || uri[0] != '/' && uri != "*" {
		uri = r.URL.RequestURI()
	}
	bw.WriteString(uri)
	bw.Write(http11)
	bw.Write(hdrHost)
	bw.WriteString(r.Host)
	bw.Write(crlf)
	for k, vs := range r.Header {
		if skipRequestHeader(k) {
			continue
		}
		for _, v := range vs {
			bw.WriteString(k)
			bw.Write(colonSpace)
			bw.WriteString(v)
			bw.Write(crlf)
		}
	}
	bw.Write(hdrXFF)
	if prior := r.Header["X-Forwarded-For"]; len(prior) > 0 {
		for _, p := range prior {
			bw.WriteString(p)
			bw.Write(commaSpace)
		}
	}
	bw.WriteString(clientIP)
	bw.Write(crlf)
	bw.Write(hdrXFProto)
	if isTLS {
		bw.Write(strHTTPS)
	} else {
		bw.Write(strHTTP)
	}
	bw.Write(crlf)
	hasBody := r.Body != nil && r.Body != http.NoBody
	switch {
	case r.ContentLength > 0:
		bw.Write(hdrCL)
		var nb [20]byte
		bw.Write(strconv.AppendInt(nb[:0], r.ContentLength, 10))
		bw.Write(crlf)
	case r.ContentLength < 0 && hasBody:
		bw.Write(hdrChunked)
	}
	bw.Write(crlf)
	if hasBody && r.ContentLength != 0 {
		bp := copyBufPool.Get().(*[]byte)
		defer copyBufPool.Put(bp)
		if r.ContentLength > 0 {
			if _, err := io.CopyBuffer(bw, io.LimitReader(r.Body, r.ContentLength), *bp); err != nil {
				return err
			}
		} else {
			cw := httputil.NewChunkedWriter(bw)
			if _, err := io.CopyBuffer(cw, r.Body, *bp); err != nil {
				return err
			}
			cw.Close()
			bw.Write(crlf) // end of the (empty) trailer
		}
	}
	return bw.Flush()
}

// respHead is the parsed head of a backend response.
type respHead struct {
	status        int
	contentLength int64 // -1 unknown
	chunked       bool
	close         bool
}

// readResponseHead parses the status line and headers into dst, skipping
// 1xx interim answers.
func readResponseHead(br *bufio.Reader, dst http.Header) (respHead, error) {
	for {
		h := respHead{contentLength: -1}
		line, err := readLine(br)
		if err != nil {
			return h, err
		}
		if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
			return h, errors.New("malformed status line from backend")
		}
		code, ok := atoi3(line[9:12])
		if !ok {
			return h, errors.New("malformed status code from backend")
		}
		if line[7] == '0' {
			h.close = true // HTTP/1.0 backend
		}
		h.status = code
		// Count header lines first to allocate their values at once.
		for {
			line, err = readLine(br)
			if err != nil {
				return h, err
			}
			if len(line) == 0 {
				break
			}
			i := bytes.IndexByte(line, ':')
			if i <= 0 {
				return h, errors.New("malformed header line from backend")
			}
			name, val := line[:i], bytes.TrimSpace(line[i+1:])
			if code >= 100 && code < 200 {
				continue
			}
			key := headerKey(name)
			switch key {
			case "Content-Length":
				n, err := strconv.ParseInt(string(val), 10, 64)
				if err != nil || n < 0 {
					return h, errors.New("malformed Content-Length from backend")
				}
				h.contentLength = n
				continue
			case "Transfer-Encoding":
				if bytes.EqualFold(val, chunkedBytes) {
					h.chunked = true
				}
				continue
			case "Connection":
				if bytes.EqualFold(val, connClose) {
					h.close = true
				}
				continue
			case "Keep-Alive", "Proxy-Connection", "Upgrade", "Trailer", "Te":
				continue
			}
			dst[key] = append(dst[key], string(val))
		}
		if code >= 100 && code < 200 {
			continue
		}
		return h, nil
	}
}

// readLine returns one line without its CRLF; the slice is valid until
// the next read. Lines longer than the buffer are refused.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, errors.New("header line from backend too long")
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

func atoi3(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// commonHeaders maps lowercase names to their canonical form without
// allocating (the compiler optimises map[string(bytes)] lookups).
var commonHeaders = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{"Content-Type", "Content-Length", "Content-Encoding", "Transfer-Encoding",
		"Connection", "Keep-Alive", "Date", "Server", "Cache-Control", "Etag", "Last-Modified", "Location",
		"Vary", "Set-Cookie", "X-Elastic-Product", "Warning", "Www-Authenticate", "Accept-Ranges",
		"Proxy-Connection", "Upgrade", "Trailer", "Te", "Expires", "Pragma", "Access-Control-Allow-Origin",
		"X-Opaque-Id", "Kbn-Name", "Kbn-License-Sig", "Content-Security-Policy", "Referrer-Policy",
		"X-Content-Type-Options", "Strict-Transport-Security"} {
		m[k] = k
		b := []byte(k)
		for i := range b {
			if b[i] >= 'A' && b[i] <= 'Z' {
				b[i] += 'a' - 'A'
			}
		}
		m[string(b)] = k
	}
	return m
}()

func headerKey(name []byte) string {
	if k, ok := commonHeaders[string(name)]; ok {
		return k
	}
	return textproto.CanonicalMIMEHeaderKey(string(name))
}

// bodyless reports responses that carry no body whatever their headers.
func bodyless(method string, status int) bool {
	return method == http.MethodHead || status == http.StatusNoContent || status == http.StatusNotModified || status < 200
}

// copyBody streams the response body to the client. It returns whether
// the connection may be reused, whether the client write failed, and the
// error.
func copyBody(w io.Writer, c *upConn, h respHead, deadline time.Duration) (reusable bool, clientErr bool, err error) {
	br := c.br
	switch {
	case h.chunked:
		cr := httputil.NewChunkedReader(br)
		bp := copyBufPool.Get().(*[]byte)
		defer copyBufPool.Put(bp)
		buf := *bp
		for {
			n, rerr := cr.Read(buf)
			if n > 0 {
				if _, werr := w.Write(buf[:n]); werr != nil {
					return false, true, werr
				}
			}
			if rerr == io.EOF {
				break
			}
			if rerr != nil {
				return false, false, rerr
			}
			_ = c.nc.SetReadDeadline(time.Now().Add(deadline))
		}
		// Trailer section up to the empty line.
		for {
			line, err := readLine(br)
			if err != nil {
				return false, false, err
			}
			if len(line) == 0 {
				break
			}
		}
		return !h.close, false, nil
	case h.contentLength >= 0:
		left := h.contentLength
		// Small bodies: straight from the connection buffer.
		if left > 0 && int64(br.Buffered()) >= left {
			b, _ := br.Peek(int(left))
			_, werr := w.Write(b)
			br.Discard(int(left))
			if werr != nil {
				return !h.close, true, werr
			}
			return !h.close, false, nil
		}
		bp := copyBufPool.Get().(*[]byte)
		defer copyBufPool.Put(bp)
		buf := *bp
		for left > 0 {
			chunk := buf
			if int64(len(chunk)) > left {
				chunk = chunk[:left]
			}
			n, rerr := br.Read(chunk)
			left -= int64(n)
			if n > 0 {
				if _, werr := w.Write(chunk[:n]); werr != nil {
					return false, true, werr
				}
			}
			if rerr != nil && left > 0 {
				if rerr == io.EOF {
					rerr = io.ErrUnexpectedEOF
				}
				return false, false, rerr
			}
			_ = c.nc.SetReadDeadline(time.Now().Add(deadline))
		}
		return !h.close, false, nil
	default:
		bp := copyBufPool.Get().(*[]byte)
		defer copyBufPool.Put(bp)
		_, err := io.CopyBuffer(w, readerOnly{br}, *bp)
		return false, false, err
	}
}

type readerOnly struct{ io.Reader }

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
