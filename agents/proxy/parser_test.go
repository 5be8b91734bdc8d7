package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"paddock/engine"
)

// FuzzReadRequest feeds arbitrary bytes to the request parser: it must
// not panic, what it accepts must be consistent (one framing, a Host on
// HTTP/1.1, offsets inside the buffer), and headComplete (the event
// loop's test for "a whole head is here") must agree with it: a head
// said complete parses without needing more bytes, and a head said
// incomplete is refused or needs more.
func FuzzReadRequest(f *testing.F) {
	for _, s := range []string{
		sampleRequest,
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"\r\n\r\n\r\nGET / HTTP/1.1\r\n\r\n",
		"POST / HTTP/1.1\nHost: a\nContent-Length: 3\n\nabc",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n folded\r\n\r\n",
		"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX\r: 1\r\n\r\n",
		"GET /\x00 HTTP/1.1\r\nHost: a\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var r request
		br := bufio.NewReaderSize(bytes.NewReader(b), 16<<10)
		err := readRequest(br, &r, 8<<10)
		complete := headComplete(b)
		var he *headError
		switch {
		case err == nil:
			if !complete {
				t.Fatalf("parsed a head headComplete calls incomplete: %q", b)
			}
			if r.chunked && r.contentLength != -1 || !r.chunked && r.contentLength < 0 {
				t.Fatalf("framing: chunked %v, length %d", r.chunked, r.contentLength)
			}
			if r.minor == 1 && r.host == nil {
				t.Fatalf("HTTP/1.1 request without Host accepted: %q", b)
			}
			for _, fl := range r.fields {
				if fl.ns > fl.ne || fl.ne > fl.vs || fl.vs > fl.ve || fl.ve > len(r.buf) {
					t.Fatalf("field offsets %+v outside the buffer (%d)", fl, len(r.buf))
				}
			}
			if r.uriS > r.uriE || r.uriE > len(r.buf) {
				t.Fatalf("uri offsets %d-%d", r.uriS, r.uriE)
			}
		case errors.As(err, &he):
			if he.status < 400 || he.status > 599 || he.msg == "" {
				t.Fatalf("head error %+v", he)
			}
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			if complete {
				t.Fatalf("headComplete says complete but the parser needed more: %q", b)
			}
		default:
			t.Fatalf("unexpected error %v", err)
		}
	})
}

// FuzzChunkReader checks the event loop's resumable chunked pass-through
// against copyChunked: the same input, fed in pieces of any size, gives
// the same output and the same verdict.
func FuzzChunkReader(f *testing.F) {
	f.Add([]byte("3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), uint8(1))
	f.Add([]byte("5\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n"), uint8(3))
	f.Add([]byte("zz\r\nabc\r\n0\r\n\r\n"), uint8(2))
	f.Add([]byte("3\r\nabcXX0\r\n\r\n"), uint8(2))
	f.Add([]byte("ffffffffffffffffff\r\n"), uint8(7))
	f.Fuzz(func(t *testing.T, b []byte, step uint8) {
		var want bytes.Buffer
		ww := bufio.NewWriter(&want)
		werr := copyChunked(ww, bufio.NewReaderSize(bytes.NewReader(b), 16<<10), nil)
		ww.Flush()

		src := &trickle{b: b, step: max(int(step), 1)}
		br := bufio.NewReaderSize(src, 16<<10)
		var k chunkReader
		var out []byte
		var done bool
		var err error
		for i := 0; i < len(b)+2; i++ {
			done, err = k.pass(br, &out)
			if done || err != errWouldBlock {
				break
			}
			src.more = true
		}
		if werr == nil {
			if !done || err != nil {
				t.Fatalf("copyChunked accepted %q, chunkReader: done %v, %v", b, done, err)
			}
			if !bytes.Equal(out, want.Bytes()) {
				t.Fatalf("output %q, copyChunked %q", out, want.Bytes())
			}
			return
		}
		if done {
			t.Fatalf("copyChunked refused %q (%v), chunkReader accepted it", b, werr)
		}
	})
}

// trickle hands out step bytes each time more is set, then would block.
type trickle struct {
	b    []byte
	step int
	more bool
	off  int
}

func (r *trickle) Read(p []byte) (int, error) {
	if r.off >= len(r.b) {
		return 0, io.EOF
	}
	if !r.more && r.off > 0 {
		return 0, errWouldBlock
	}
	r.more = false
	n := copy(p, r.b[r.off:min(len(r.b), r.off+r.step)])
	r.off += n
	return n, nil
}

// smuggling lists requests that HTTP servers and proxies have read
// differently (request smuggling), with malformed framing and heads.
// host is replaced by the deployment's host name.
var smuggling = []struct{ name, req string }{
	{"valid with length", "POST /echo HTTP/1.1\r\nHost: {host}\r\nContent-Length: 3\r\n\r\nabc"},
	{"valid chunked", "POST /echo HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"},
	{"two different lengths", "POST /echo HTTP/1.1\r\nHost: {host}\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd" + "GET /smuggled HTTP/1.1\r\nHost: {host}\r\n\r\n"},
	{"two equal lengths", "POST /echo HTTP/1.1\r\nHost: {host}\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc"},
	{"length list", "POST /echo HTTP/1.1\r\nHost: {host}\r\nContent-Length: 3, 3\r\n\r\nabc" + "GET /smuggled HTTP/1.1\r\nHost: {host}\r\n\r\n"},
	{"length with sign", "POST /echo HTTP/1.1\r\nHost: {host}\r\nContent-Length: +3\r\n\r\nabc" + "GET /smuggled HTTP/1.1\r\nHost: {host}\r\n\r\n"},
	{"negative length", "POST /echo HTTP/1.1\r\nHost: {host}\r\nContent-Length: -1\r\n\r\nabc"},
	{"hex length", "POST /echo HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0x3\r\n\r\nabc"},
	{"huge length", "POST /echo HTTP/1.1\r\nHost: {host}\r\nContent-Length: 99999999999999999999\r\n\r\nabc"},
	{"space before colon", "POST /echo HTTP/1.1\r\nHost: {host}\r\nContent-Length : 3\r\n\r\nabc" + "GET /smuggled HTTP/1.1\r\nHost: {host}\r\n\r\n"},
	{"chunked and length", "POST /echo HTTP/1.1\r\nHost: {host}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: {host}\r\n\r\n"},
	{"length and chunked", "POST /echo HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n" + "GET /smuggled HTTP/1.1\r\nHost: {host}\r\n\r\n"},
	{"chunked twice", "POST /echo HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + "GET /smuggled HTTP/1.1\r\nHost: {host}\r\n\r\n"},
	{"chunked list", "POST /echo HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n"},
	{"identity coding", "POST /echo HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: identity\r\nContent-Length: 3\r\n\r\nabc" + "GET /smuggled HTTP/1.1\r\nHost: {host}\r\n\r\n"},
	{"xchunked", "POST /echo HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n" + "GET /smuggled HTTP/1.1\r\nHost: {host}\r\n\r\n"},
	{"gzip, chunked", "POST /echo HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n" + "GET /smuggled HTTP/1.1\r\nHost: {host}\r\n\r\n"},
	{"chunked on HTTP/1.0", "POST /echo HTTP/1.0\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"},
	{"folded coding", "POST /echo HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n" + "GET /smuggled HTTP/1.1\r\nHost: {host}\r\n\r\n"},
	{"obs-fold", "GET / HTTP/1.1\r\nHost: {host}\r\nX-A: 1\r\n folded\r\n\r\n"},
	{"obs-fold with tab", "GET / HTTP/1.1\r\nHost: {host}\r\nX-A: 1\r\n\tfolded\r\n\r\n"},
	{"bare CR in value", "GET / HTTP/1.1\r\nHost: {host}\r\nX-A: 1\r2\r\n\r\n"},
	{"bare CR line end", "GET / HTTP/1.1\rHost: {host}\r\n\r\n"},
	{"bare LF line ends", "GET / HTTP/1.1\nHost: {host}\n\n"},
	{"NUL in value", "GET / HTTP/1.1\r\nHost: {host}\r\nX-A: 1\x002\r\n\r\n"},
	{"NUL in name", "GET / HTTP/1.1\r\nHost: {host}\r\nX\x00A: 1\r\n\r\n"},
	{"empty header name", "GET / HTTP/1.1\r\nHost: {host}\r\n: 1\r\n\r\n"},
	{"no colon", "GET / HTTP/1.1\r\nHost: {host}\r\nX-A\r\n\r\n"},
	{"invalid chunk size", "POST /echo HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n" + "GET /smuggled HTTP/1.1\r\nHost: {host}\r\n\r\n"},
	{"negative chunk size", "POST /echo HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n-3\r\nabc\r\n0\r\n\r\n"},
	{"chunk size overflow", "POST /echo HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nabc\r\n0\r\n\r\n"},
	{"chunk size with 0x", "POST /echo HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n"},
	{"chunk data too long", "POST /echo HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n" + "GET /smuggled HTTP/1.1\r\nHost: {host}\r\n\r\n"},
	{"chunk without CRLF", "POST /echo HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc0\r\n\r\n" + "GET /smuggled HTTP/1.1\r\nHost: {host}\r\n\r\n"},
	{"chunk extension bare CR", "POST /echo HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n3;a\rb\r\nabc\r\n0\r\n\r\n" + "GET /smuggled HTTP/1.1\r\nHost: {host}\r\n\r\n"},
	{"chunk line bare LF", "POST /echo HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n" + "GET /smuggled HTTP/1.1\r\nHost: {host}\r\n\r\n"},
	{"trailer bare CR", "POST /echo HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r2\r\n\r\n"},
	{"trailer folded", "POST /echo HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n 2\r\n\r\n"},
	{"missing host", "GET / HTTP/1.1\r\n\r\n"},
	{"two hosts", "GET / HTTP/1.1\r\nHost: {host}\r\nHost: {host}\r\n\r\n"},
	{"host with space", "GET / HTTP/1.1\r\nHost: {host} x\r\n\r\n"},
	{"double space in request line", "GET  / HTTP/1.1\r\nHost: {host}\r\n\r\n"},
	{"lowercase version", "GET / http/1.1\r\nHost: {host}\r\n\r\n"},
	{"HTTP/1.2", "GET / HTTP/1.2\r\nHost: {host}\r\n\r\n"},
	{"HTTP/2.0", "GET / HTTP/2.0\r\nHost: {host}\r\n\r\n"},
	{"NUL in target", "GET /\x00 HTTP/1.1\r\nHost: {host}\r\n\r\n"},
	{"space in method", "G ET / HTTP/1.1\r\nHost: {host}\r\n\r\n"},
	// Variants of the framing headers' spelling and of chunk lines; those
	// net/http refuses are followed by a request that must not reach the
	// backend on its own (a valid one would be a real pipelined request).
	{"coding with space before colon", "POST /echo HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding : chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n" + "GET /smuggled HTTP/1.1\r\nHost: {host}\r\n\r\n"},
	{"coding name with tab", "POST /echo HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding\t: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n" + "GET /smuggled HTTP/1.1\r\nHost: {host}\r\n\r\n"},
	{"coding after tab", "POST /echo HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding:\tchunked\r\n\r\n0\r\n\r\n"},
	{"coding in capitals", "POST /echo HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: CHUNKED\r\n\r\n3\r\nabc\r\n0\r\n\r\n"},
	{"coding with trailing space", "POST /echo HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked \r\n\r\n3\r\nabc\r\n0\r\n\r\n"},
	{"coding with vertical tab", "POST /echo HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: \vchunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n" + "GET /smuggled HTTP/1.1\r\nHost: {host}\r\n\r\n"},
	{"empty coding", "POST /echo HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: \r\nContent-Length: 3\r\n\r\nabc" + "GET /smuggled HTTP/1.1\r\nHost: {host}\r\n\r\n"},
	{"folded length", "POST /echo HTTP/1.1\r\nHost: {host}\r\nContent-Length: 3\r\n 4\r\n\r\nabcd" + "GET /smuggled HTTP/1.1\r\nHost: {host}\r\n\r\n"},
	{"length with leading zeros", "POST /echo HTTP/1.1\r\nHost: {host}\r\nContent-Length: 003\r\n\r\nabc"},
	{"empty length", "POST /echo HTTP/1.1\r\nHost: {host}\r\nContent-Length: \r\n\r\n" + "GET /smuggled HTTP/1.1\r\nHost: {host}\r\n\r\n"},
	{"length with trailing garbage", "POST /echo HTTP/1.1\r\nHost: {host}\r\nContent-Length: 3 4\r\n\r\nabcd" + "GET /smuggled HTTP/1.1\r\nHost: {host}\r\n\r\n"},
	{"length name with tab", "POST /echo HTTP/1.1\r\nHost: {host}\r\nContent-Length\t: 3\r\n\r\nabc" + "GET /smuggled HTTP/1.1\r\nHost: {host}\r\n\r\n"},
	{"first header line folded", "POST /echo HTTP/1.1\r\n Content-Length: 3\r\nHost: {host}\r\n\r\nabc" + "GET /smuggled HTTP/1.1\r\nHost: {host}\r\n\r\n"},
	{"chunk size with trailing space", "POST /echo HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n3 \r\nabc\r\n0\r\n\r\n"},
	{"chunk size with leading space", "POST /echo HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n 3\r\nabc\r\n0\r\n\r\n" + "GET /smuggled HTTP/1.1\r\nHost: {host}\r\n\r\n"},
	{"space before chunk extension", "POST /echo HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n3 ;x=1\r\nabc\r\n0\r\n\r\n" + "GET /smuggled HTTP/1.1\r\nHost: {host}\r\n\r\n"},
	{"chunk extension with trailing space", "POST /echo HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n3;x=1 \r\nabc\r\n0\r\n\r\n"},
	{"chunk size with leading zeros", "POST /echo HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n0003\r\nabc\r\n0\r\n\r\n"},
	{"chunk size with underscore", "POST /echo HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n0_3\r\nabc\r\n0\r\n\r\n" + "GET /smuggled HTTP/1.1\r\nHost: {host}\r\n\r\n"},
	{"empty chunk size", "POST /echo HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n\r\nabc\r\n0\r\n\r\n" + "GET /smuggled HTTP/1.1\r\nHost: {host}\r\n\r\n"},
	{"long chunk extension", "POST /echo HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n3;" + strings.Repeat("e", 8<<10) + "\r\nabc\r\n0\r\n\r\n"},
	{"last chunk, then LF only", "POST /echo HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\n\n"},
	{"mostly chunk extensions", "POST /echo HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n" + strings.Repeat("1;"+strings.Repeat("e", 60)+"\r\na\r\n", 400) + "0\r\n\r\n"},
	{"length in the trailer", "POST /echo HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nContent-Length: 40\r\n\r\n"},
	{"tab in request line", "GET\t/ HTTP/1.1\r\nHost: {host}\r\n\r\n"},
	{"absolute-form target", "GET http://{host}/ HTTP/1.1\r\nHost: {host}\r\n\r\n"},
	{"LF CR line end", "GET / HTTP/1.1\n\rHost: {host}\r\n\r\n"},
	{"GET with a body", "GET /echo HTTP/1.1\r\nHost: {host}\r\nContent-Length: 3\r\n\r\nabc"},
	{"oversized header", "GET / HTTP/1.1\r\nHost: {host}\r\nX-Big: " + strings.Repeat("x", 1<<20+1024) + "\r\n\r\n"},
	{"oversized head, many lines", "GET / HTTP/1.1\r\nHost: {host}\r\n" + strings.Repeat("X-Many: "+strings.Repeat("y", 1000)+"\r\n", 1100) + "\r\n"},
}

// TestSmugglingAgainstNetHTTP sends each request of smuggling to a
// net/http server and through the proxy (both front ends) to a net/http
// backend: wherever net/http refuses the request, the proxy refuses it
// too (its own error, or a closed connection), and no request the
// client did not send reaches the backend.
func TestSmugglingAgainstNetHTTP(t *testing.T) {
	var smuggled, smuggledDirect atomic.Int64
	handler := func(count *atomic.Int64) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/smuggled" {
				count.Add(1)
			}
			b, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
				return
			}
			fmt.Fprintf(w, "%s %s %d", r.Method, r.URL.Path, len(b))
		})
	}
	direct := serveHTTP(t, handler(&smuggledDirect))
	backend := serveHTTP(t, handler(&smuggled))
	host := testID + ".localhost"
	for _, fe := range []struct {
		name  string
		loops int
	}{{"event loop", 0}, {"goroutines", -1}} {
		t.Run(fe.name, func(t *testing.T) {
			p := startProxy(t, func(c *Config) { c.EventLoops = fe.loops; c.MaxHeaderBytes = 64 << 10 })
			p.setTable(map[string]engine.Route{testID: liveRoute(testID, 1, esBackend("b", "z1", "a1", backend))}, nil)
			for _, tc := range smuggling {
				t.Run(tc.name, func(t *testing.T) {
					req := strings.ReplaceAll(tc.req, "{host}", host)
					want := exchangeRaw(t, direct, req)
					got := exchangeRaw(t, p.HTTPAddr(), req)
					if want.refused() && !got.refused() {
						t.Fatalf("net/http refuses (%s), the proxy passed it: %s", want, got)
					}
					if !want.refused() && got.refused() {
						t.Logf("stricter than net/http: net/http %s, proxy %s", want, got)
					}
				})
			}
			// Requests hidden in the bytes of another must never reach
			// the backend as requests of their own.
			time.Sleep(100 * time.Millisecond)
			if n := smuggled.Load(); n > 0 {
				t.Fatalf("a smuggled request reached the backend %d times through the proxy", n)
			}
		})
	}
}

type rawResult struct {
	code       int
	proxyError string
	body       string
	err        error
}

func (r rawResult) refused() bool { return r.code == 0 || r.code >= 400 }

func (r rawResult) String() string {
	if r.code == 0 {
		return fmt.Sprintf("no answer (%v)", r.err)
	}
	return fmt.Sprintf("%d %q %s", r.code, r.body, r.proxyError)
}

// exchangeRaw writes req on a fresh connection and reads the first
// answer (a 100 Continue skipped).
func exchangeRaw(t *testing.T, addr, req string) rawResult {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	go func() { _, _ = io.WriteString(nc, req) }()
	br := bufio.NewReader(nc)
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return rawResult{err: err}
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 100 {
			continue
		}
		return rawResult{code: resp.StatusCode, body: string(b), proxyError: resp.Header.Get("X-Paddock-Proxy-Error")}
	}
}

func serveHTTP(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}
