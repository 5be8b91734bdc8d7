package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http/httputil"
	"strconv"
	"sync"
)

// The forwarding path writes the request head straight from the parsed
// client buffer onto a pooled keep-alive backend connection, builds the
// client's response head from the backend's header lines (dropping
// hop-by-hop ones) and copies bodies between the two buffered
// connections: no http.Request, no header maps, no per-request
// goroutine.

// errStale: a reused connection failed before any response byte (the
// backend closed it while idle); an idempotent request may be sent
// again on a fresh connection.
var errStale = errors.New("pooled connection closed by the backend")

// exchangeError tells the handler what failed.
type exchangeError struct {
	err error
	// timeout: no answer within the upstream timeout (504).
	timeout bool
	// started: response bytes went to the client; only closing is left.
	started bool
	// stale: see errStale.
	stale bool
	// connect: no connection could be made (another backend may do).
	connect bool
	// client: the client side failed (gone, or its body was malformed).
	client bool
}

func (e *exchangeError) Error() string { return e.err.Error() }
func (e *exchangeError) Unwrap() error { return e.err }

var copyBufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

var (
	crlf         = []byte("\r\n")
	colonSpace   = []byte(": ")
	http11       = []byte(" HTTP/1.1\r\n")
	statusPrefix = []byte("HTTP/1.1 ")
	hdrChunked   = []byte("Transfer-Encoding: chunked\r\n")
	hdrCL        = []byte("Content-Length: ")
	hdrXFF       = []byte("X-Forwarded-For: ")
	hdrXFProto   = []byte("X-Forwarded-Proto: ")
	hdrConnClose = []byte("Connection: close\r\n")
	hdrConnKA    = []byte("Connection: keep-alive\r\n")
	commaSpace   = []byte(", ")
	protoHTTPS   = []byte("https\r\n")
	protoHTTP    = []byte("http\r\n")
	connClose    = []byte("close")
	chunkedBytes = []byte("chunked")
	lastChunk    = []byte("0\r\n")
)

// writeRequestHead writes the request head to the backend's buffer.
func writeRequestHead(bw *bufio.Writer, r *request, clientIP string, isTLS bool) {
	bw.Write(appendRequestHead(bw.AvailableBuffer(), r, clientIP, isTLS))
}

// appendRequestHead appends the head sent to the backend: the client's
// request line and headers less hop-by-hop ones, X-Forwarded-For with
// the client's address appended, X-Forwarded-Proto, and the body's
// framing.
func appendRequestHead(dst []byte, r *request, clientIP string, isTLS bool) []byte {
	dst = append(dst, r.method...)
	dst = append(dst, ' ')
	dst = append(dst, r.uri()...)
	dst = append(dst, http11...)
	var xff [8][]byte
	nx := 0
	for _, f := range r.fields {
		switch f.class {
		case hConnection, hHopByHop, hUpgrade, hContentLength, hTransferEncoding, hExpect, hXFProto:
			continue
		case hXFF:
			if nx < len(xff) {
				xff[nx] = r.value(f)
			}
			nx++
			continue
		}
		dst = append(dst, r.buf[f.ns:f.ne]...)
		dst = append(dst, colonSpace...)
		dst = append(dst, r.buf[f.vs:f.ve]...)
		dst = append(dst, crlf...)
	}
	dst = append(dst, hdrXFF...)
	if nx > len(xff) { // rare: walk the fields again
		for _, f := range r.fields {
			if f.class == hXFF {
				dst = append(append(dst, r.value(f)...), commaSpace...)
			}
		}
	} else {
		for _, v := range xff[:nx] {
			dst = append(append(dst, v...), commaSpace...)
		}
	}
	dst = append(dst, clientIP...)
	dst = append(dst, crlf...)
	dst = append(dst, hdrXFProto...)
	if isTLS {
		dst = append(dst, protoHTTPS...)
	} else {
		dst = append(dst, protoHTTP...)
	}
	switch {
	case r.chunked:
		dst = append(dst, hdrChunked...)
	case r.contentLength > 0:
		dst = append(dst, hdrCL...)
		dst = strconv.AppendInt(dst, r.contentLength, 10)
		dst = append(dst, crlf...)
	}
	return append(dst, crlf...)
}

// srcError marks a failure reading the source of a copy (the client's
// body, or the backend's).
type srcError struct{ error }

func (e srcError) Unwrap() error { return e.error }

// copyExact copies n bytes from br to w, straight from br's buffer.
// flush, when set, is called before each blocking read (streaming).
func copyExact(w io.Writer, br *bufio.Reader, n int64, flush func() error) error {
	for n > 0 {
		if br.Buffered() == 0 {
			if flush != nil {
				if err := flush(); err != nil {
					return err
				}
			}
			if _, err := br.Peek(1); err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return srcError{err}
			}
		}
		k := br.Buffered()
		if int64(k) > n {
			k = int(n)
		}
		b, _ := br.Peek(k)
		if _, err := w.Write(b); err != nil {
			return err
		}
		br.Discard(k)
		n -= int64(k)
	}
	return nil
}

// copyChunked passes a chunked body through verbatim (chunk framing and
// trailers included), so it streams without re-encoding.
func copyChunked(w *bufio.Writer, br *bufio.Reader, flush func() error) error {
	var ov chunkOverhead
	for {
		if br.Buffered() == 0 && flush != nil {
			if err := flush(); err != nil {
				return err
			}
		}
		line, err := crlfLine(br)
		if err != nil {
			return srcError{err}
		}
		n, err := parseChunkSize(line)
		if err != nil {
			return srcError{err}
		}
		if err := ov.add(len(line), n); err != nil {
			return srcError{err}
		}
		if n == 0 {
			w.Write(lastChunk)
			for { // trailer section up to the empty line
				line, err := crlfLine(br)
				if err != nil {
					return srcError{err}
				}
				if len(line) > 0 && !validTrailer(line) {
					return srcError{errors.New("malformed trailer line")}
				}
				w.Write(line)
				w.Write(crlf)
				if len(line) == 0 {
					return nil
				}
			}
		}
		var hb [20]byte
		w.Write(strconv.AppendInt(hb[:0], n, 16))
		w.Write(crlf)
		if err := copyExact(w, br, n, flush); err != nil {
			return err
		}
		line, err = crlfLine(br)
		if err != nil || len(line) != 0 {
			return srcError{errors.New("malformed chunk end")}
		}
		w.Write(crlf)
	}
}

// crlfLine reads one line of a chunked body without its CRLF: lines of
// the chunked coding end with CRLF (a bare LF is refused, as net/http
// does: two readers could split the body differently).
func crlfLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, errors.New("chunked line too long")
		}
		return nil, err
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return nil, errors.New("chunked line ends with a bare LF")
	}
	return line[:len(line)-2], nil
}

// chunkOverhead refuses a chunked body that is mostly framing (tiny
// chunks with long extensions), as net/http does: each chunk may bring
// 16 bytes of overhead plus twice its data, and more than 16 KiB of
// overhead beyond that allowance fails the body ("chunked encoding
// contains too much non-data").
type chunkOverhead struct{ excess int64 }

func (o *chunkOverhead) add(lineLen int, size int64) error {
	o.excess += int64(lineLen) + 2
	o.excess = max(o.excess-16-2*size, 0)
	if o.excess > 16<<10 {
		return errors.New("chunked encoding contains too much non-data")
	}
	return nil
}

// maxChunkLine bounds a chunk-size line without its CRLF (net/http
// refuses lines of 4096 bytes and more).
const maxChunkLine = 4095

// parseChunkSize reads a chunk-size line (without its CRLF) as net/http
// does: trailing spaces and tabs dropped, extensions after ';' ignored,
// and what is left exactly hex digits (no whitespace before the size or
// before ';'), no bare CR, at most maxChunkLine bytes. A reader more
// lenient than the backend's could frame the body differently from it.
func parseChunkSize(line []byte) (int64, error) {
	if len(line) > maxChunkLine {
		return 0, errors.New("chunk line longer than 4 KiB")
	}
	if bytes.IndexByte(line, '\r') >= 0 {
		return 0, errors.New("malformed chunk size: bare CR")
	}
	size := bytes.TrimRight(line, " \t")
	if i := bytes.IndexByte(size, ';'); i >= 0 {
		size = size[:i]
	}
	n, ok := parseHex(size)
	if !ok {
		return 0, errors.New("malformed chunk size")
	}
	return n, nil
}

// validTrailer checks a trailer line as a header line: a token, a colon,
// a value without CR, NUL or folding.
func validTrailer(line []byte) bool {
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return false
	}
	for _, c := range line[:i] {
		if !tokenChar(c) {
			return false
		}
	}
	return bytes.IndexByte(line[i:], '\r') < 0 && bytes.IndexByte(line[i:], 0) < 0
}

func parseHex(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 15 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			n = n<<4 | int64(c-'0')
		case c >= 'a' && c <= 'f':
			n = n<<4 | int64(c-'a'+10)
		case c >= 'A' && c <= 'F':
			n = n<<4 | int64(c-'A'+10)
		default:
			return 0, false
		}
	}
	return n, true
}

// respHead is the parsed head of a backend response.
type respHead struct {
	status        int
	contentLength int64 // -1 unknown
	chunked       bool
	close         bool
}

// readResponseHead parses the backend's status line and headers,
// appending the client's response head (without framing headers and
// the final CRLF) to out. 1xx interim answers are skipped.
func readResponseHead(br *bufio.Reader, out []byte) (respHead, []byte, error) {
	start := len(out)
	for {
		out = out[:start]
		h := respHead{contentLength: -1}
		line, err := headLine(br)
		if err != nil {
			return h, out, err
		}
		if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
			return h, out, errors.New("malformed status line from backend")
		}
		code, ok := atoi3(line[9:12])
		if !ok {
			return h, out, errors.New("malformed status code from backend")
		}
		if line[7] == '0' {
			h.close = true // HTTP/1.0 backend
		}
		h.status = code
		out = append(out, statusPrefix...)
		out = append(out, line[9:]...)
		out = append(out, crlf...)
		for {
			line, err = headLine(br)
			if err != nil {
				return h, out, err
			}
			if len(line) == 0 {
				break
			}
			i := bytes.IndexByte(line, ':')
			if i <= 0 {
				return h, out, errors.New("malformed header line from backend")
			}
			switch classify(line[:i]) {
			case hContentLength:
				n, ok := parseLength(bytes.TrimSpace(line[i+1:]))
				if !ok {
					return h, out, errors.New("malformed Content-Length from backend")
				}
				h.contentLength = n
				continue
			case hTransferEncoding:
				if bytes.EqualFold(bytes.TrimSpace(line[i+1:]), chunkedBytes) {
					h.chunked = true
				}
				continue
			case hConnection:
				forTokens(line[i+1:], func(tok []byte) {
					if bytes.EqualFold(tok, connClose) {
						h.close = true
					}
				})
				continue
			case hHopByHop, hUpgrade:
				continue
			}
			out = append(out, line...)
			out = append(out, crlf...)
		}
		if code >= 100 && code < 200 {
			continue
		}
		return h, out, nil
	}
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

// bodyless reports responses that carry no body whatever their headers.
func bodyless(method string, status int) bool {
	return method == "HEAD" || status == 204 || status == 304 || status < 200
}

// copyUntilEOF streams a body delimited by the backend closing.
func copyUntilEOF(w io.Writer, br *bufio.Reader, flush func() error) error {
	bp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bp)
	buf := *bp
	for {
		if br.Buffered() == 0 && flush != nil {
			if err := flush(); err != nil {
				return err
			}
		}
		n, err := br.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return srcError{err}
		}
	}
}

// dechunk copies a chunked body decoded (for HTTP/1.0 clients).
func dechunk(w io.Writer, br *bufio.Reader) error {
	bp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bp)
	_, err := io.CopyBuffer(w, readerOnly{httputil.NewChunkedReader(br)}, *bp)
	if err != nil {
		return srcError{err}
	}
	for { // trailers
		line, err := headLine(br)
		if err != nil {
			return srcError{err}
		}
		if len(line) == 0 {
			return nil
		}
	}
}

type readerOnly struct{ io.Reader }

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
