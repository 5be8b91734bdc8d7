package proxy

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"
)

const sampleRequest = "GET /logs-*/_search?q=level:error HTTP/1.1\r\nHost: 0123456789abcdef0123456789abcdef.localhost:9200\r\n" +
	"User-Agent: curl/8.5.0\r\nAccept: application/json\r\nAuthorization: ApiKey c2VjcmV0\r\nX-Opaque-Id: abc\r\nConnection: keep-alive\r\n\r\n"

const sampleResponse = "HTTP/1.1 200 OK\r\nX-Elastic-Product: Elasticsearch\r\nContent-Type: application/json\r\nContent-Length: 28\r\n\r\n{\"took\":1,\"timed_out\":false}"

// The per-request path (parse the client head, find the target, write
// the backend head, parse the backend head into the client head, copy
// the body) allocates nothing once buffers are warm.
func TestHotPathDoesNotAllocate(t *testing.T) {
	var r request
	src := strings.NewReader("")
	br := bufio.NewReaderSize(src, 16<<10)
	up := bufio.NewReaderSize(strings.NewReader(""), 16<<10)
	bw := bufio.NewWriterSize(io.Discard, 16<<10)
	var out bytes.Buffer
	cw := bufio.NewWriterSize(&out, 16<<10)
	head := []byte{}
	run := func() {
		src.Reset(sampleRequest)
		br.Reset(src)
		if err := readRequest(br, &r, 64<<10); err != nil {
			t.Fatal(err)
		}
		tg, err := ParseTarget(bstr(r.host), bstr(r.cluster), "localhost")
		if err != nil || tg.ID != testID {
			t.Fatalf("%+v %v", tg, err)
		}
		writeRequestHead(bw, &r, "127.0.0.1", false)
		bw.Flush()
		up.Reset(strings.NewReader(sampleResponse))
		rh, h, err := readResponseHead(up, head[:0])
		if err != nil || rh.status != 200 || rh.contentLength != 28 {
			t.Fatalf("%+v %v", rh, err)
		}
		head = h
		out.Reset()
		cw.Write(head)
		if err := copyExact(cw, up, rh.contentLength, nil); err != nil {
			t.Fatal(err)
		}
		cw.Flush()
	}
	run()
	if n := testing.AllocsPerRun(200, run); n > 1 { // strings.NewReader for the fake backend
		t.Fatalf("hot path allocates %v times per request", n)
	}
	if !strings.Contains(out.String(), "X-Elastic-Product: Elasticsearch\r\n") || !strings.HasSuffix(out.String(), `"timed_out":false}`) {
		t.Fatalf("client response %q", out.String())
	}
}

func BenchmarkHotPath(b *testing.B) {
	var r request
	src := strings.NewReader("")
	br := bufio.NewReaderSize(src, 16<<10)
	resp := strings.NewReader("")
	up := bufio.NewReaderSize(resp, 16<<10)
	bw := bufio.NewWriterSize(io.Discard, 16<<10)
	cw := bufio.NewWriterSize(io.Discard, 16<<10)
	var head []byte
	b.ReportAllocs()
	for b.Loop() {
		src.Reset(sampleRequest)
		br.Reset(src)
		readRequest(br, &r, 64<<10)
		ParseTarget(bstr(r.host), bstr(r.cluster), "localhost")
		writeRequestHead(bw, &r, "127.0.0.1", false)
		bw.Flush()
		resp.Reset(sampleResponse)
		up.Reset(resp)
		rh, h, _ := readResponseHead(up, head[:0])
		head = h
		cw.Write(head)
		copyExact(cw, up, rh.contentLength, nil)
		cw.Flush()
	}
}
